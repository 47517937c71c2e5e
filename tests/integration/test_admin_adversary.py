"""An adversarial review of the admin API (src/admin/*, the dynamic endpoints
of src/gateway.c) as an attacker and as a demanding production user would
drive it: raw signed JSON 1.1 calls (iglib.admin_request), no SDK between
the test and the gateway.

- auth: unsigned, wrong secret, unknown key, expired and future dates, a
  body changed after signing, garbage Authorization; data_auth = on.
- input: bad JSON, deep nesting, wrong member types, unicode and 64-char
  names, duplicate keys, MaxResults/NextToken games, s3:// and relative
  URLs, directories, FIFOs, devices, non-executable images.
- memory: ListModels over many large documents, many concurrent, clients
  that leave before the answer; the RSS of every variant an endpoint serves.
- lifetimes: UpdateEndpoint back and forth 20 times while several clients
  (unary and response-stream) invoke: zero failures; delete of another
  endpoint under load; delete while requests are in flight on a slow
  container, the clients leaving; delete during Creating; double delete;
  update during Updating; one endpoint updated from two gateways at once.
- status machine: bad model files -> Failed naming them (and not quoting a
  secret file), a serve program exiting at start -> Failed, tests/byo/serve
  serving, its child gone after DeleteEndpoint and after the gateway exits.
- holes: Image file:///bin/bash with Environment BASH_ENV runs any shell
  command; a ModelDataUrl swapped for a FIFO after CreateModel wedges the
  model loader (every later deployment hangs, and so does SIGTERM).
- the store: kill -9 the embedded redis-server (with a create, a delete and
  an update in flight): 503 meanwhile, InvokeEndpoint keeps working, nothing
  lost; CLIENT KILL of the subscriber and command connections; the gateway
  restarted on its data_dir serves again.
- several gateways: concurrent updates of one endpoint through two; a
  gateway joining while an endpoint is Updating; an update that fails on one
  gateway only; DeleteEndpoint racing the Creating -> InService move.
- h2c streams reset mid-request and /transform clients leaving mid-body
  during the 20 updates (run with INFERGATE_BIN=build/san/infergate too).

Run with /usr/bin/python3 from tests/integration; < 120 s."""

import datetime
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import urllib.request
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from iglib import (ADMIN_KEY, ADMIN_SECRET, DEMO_MODEL, ROOT, AdminGateway, admin_request,
                   check, check_eq, csv_body, expected_body, finish, load_model, rss_kb,
                   sigv4_headers, stop_proc)

T0 = time.time()
tmp = tempfile.mkdtemp(prefix="ig-adm-adv-")
# the serve programs this file writes live in <tmp>: file:// images may run them
EXEC_DIRS = ":".join([os.path.join(ROOT, "tests", "byo"), "/bin", tmp])
BYO = os.path.join(ROOT, "tests", "byo", "serve")
KM2D_PATH = os.path.join(ROOT, "tests", "data", "kmeans-2d.json")
KM2D = load_model(KM2D_PATH)
GREEN = {"algorithm": "kmeans", "feature_dim": 2, "centroids": [[10.0, 10.0], [-10.0, -10.0]]}
GREEN_PATH = os.path.join(tmp, "green.json")
with open(GREEN_PATH, "w") as f:
    json.dump(GREEN, f)
ROWS = [[1.0, 1.0], [3.5, 0.2], [0.1, 2.9], [-1.0, 0.5]]
BODY = csv_body(ROWS)
WANT = {"Blue": expected_body(KM2D, ROWS), "Green": expected_body(GREEN, ROWS)}
WANT_CSV = {expected_body(KM2D, ROWS, "text/csv"), expected_body(GREEN, ROWS, "text/csv")}


def log(msg):
    print("[%5.1f s] %s" % (time.time() - T0, msg), flush=True)


class section:
    """A block; an exception in it is one failure naming it, and the next
    section still runs."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        log("== " + self.name)
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            check(False, "%s: raised %s: %s\n%s" % (self.name, et.__name__, ev,
                                                   "".join(traceback.format_tb(tb)[-3:])))
        return True


# ---- calls -----------------------------------------------------------------

def call(gw, op, body, **kw):
    """-> (HTTP status, error type or None, message or None, parsed body)."""
    try:
        st, h, raw, js = admin_request(gw.admin_port, op, body, **kw)
    except (OSError, http.client.HTTPException) as e:
        return 0, "no answer: %r" % e, None, None
    etype = h.get("x-amzn-errortype") or (js or {}).get("__type") if st != 200 else None
    return st, etype, (js or {}).get("message"), js


def ok(gw, op, body, what):
    st, et, msg, js = call(gw, op, body)
    check(st == 200, "%s: %s answered %d %s %s" % (what, op, st, et, msg))
    return js or {}


def refused(gw, op, body, etype, what, status=400, contains=None):
    st, et, msg, js = call(gw, op, body)
    good = st == status and et == etype and (contains is None or contains in (msg or ""))
    return check(good, "%s: want %d %s%s, got %d %s %r" % (
        what, status, etype, " containing %r" % contains if contains else "", st, et, msg))


def model(gw, name, image, url=None, env=None):
    pc = {"Image": image}
    if url:
        pc["ModelDataUrl"] = url
    if env:
        pc["Environment"] = env
    return call(gw, "CreateModel", {"ModelName": name, "PrimaryContainer": pc,
                                    "ExecutionRoleArn": "arn:aws:iam::000000000000:role/x"})


def config(gw, name, variants, timeout=None):
    pvs = []
    for vn, mn, w in variants:
        pv = {"VariantName": vn, "ModelName": mn, "InitialInstanceCount": 1,
              "InstanceType": "ml.m5.large", "InitialVariantWeight": w}
        if timeout:
            pv["ContainerStartupHealthCheckTimeoutInSeconds"] = timeout
        pvs.append(pv)
    return call(gw, "CreateEndpointConfig", {"EndpointConfigName": name,
                                             "ProductionVariants": pvs})


def describe(gw, name):
    """-> the description, or None when the endpoint does not exist."""
    st, et, msg, js = call(gw, "DescribeEndpoint", {"EndpointName": name})
    if st == 400 and et == "ValidationException" and "Could not find" in (msg or ""):
        return None
    if st != 200:
        return {"EndpointStatus": "?%d %s %s" % (st, et, msg)}
    return js


def wait_ep(gw, name, want, timeout=15, what=""):
    """Poll until the status is in <want> ("gone": deleted); -> last."""
    deadline = time.time() + timeout
    d = None
    while time.time() < deadline:
        d = describe(gw, name)
        s = "gone" if d is None else d.get("EndpointStatus")
        if s in want:
            return d
        time.sleep(0.03)
    check(False, "%s: endpoint %s not %s within %d s; last %r" % (what, name, "/".join(want),
                                                                   timeout, d))
    return d


def deploy(gw, name, image, url=None, env=None, want=("InService",), timeout=15, t_s=None):
    model(gw, name + "-m", image, url, env)
    config(gw, name + "-c", [("AllTraffic", name + "-m", 1.0)], timeout=t_s)
    st, et, msg, _ = call(gw, "CreateEndpoint", {"EndpointName": name,
                                                 "EndpointConfigName": name + "-c"})
    check(st == 200, "CreateEndpoint %s: %d %s %s" % (name, st, et, msg))
    return wait_ep(gw, name, want, timeout, "deploy " + name)


def invoke(port, name, body=BODY, conn=None, variant=None, timeout=20, stream=False,
           accept=None, sign=None):
    """POST /endpoints/NAME/invocations[-response-stream]; <sign>: a
    gateway whose keys sign it (data_auth). -> (status, headers, body)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = {"Content-Type": "text/csv"}
    if accept:
        hdrs["X-Amzn-SageMaker-Accept" if stream else "Accept"] = accept
    if variant:
        hdrs["X-Amzn-SageMaker-Target-Variant"] = variant
    path = "/endpoints/%s/invocations%s" % (name, "-response-stream" if stream else "")
    if sign is not None:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(method="POST", url="http://127.0.0.1:%d%s"
                                             % (port, path), data=body, headers=hdrs)
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(ADMIN_KEY, ADMIN_SECRET),
                                "sagemaker", "us-east-1").add_auth(req)
        hdrs = dict(req.headers.items())
    try:
        c.request("POST", path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if conn is None:
            c.close()


def es_payload(data):
    """The PayloadPart bytes of an event stream (sagemaker-protocols §1.3)."""
    out, off = b"", 0
    while off + 12 <= len(data):
        total = int.from_bytes(data[off:off + 4], "big")
        hlen = int.from_bytes(data[off + 4:off + 8], "big")
        hdrs = data[off + 12:off + 12 + hlen]
        if b"PayloadPart" in hdrs:
            out += data[off + 12 + hlen:off + total - 4]
        off += total
    return out


def procs_below(pid, needle, leaders=False):
    """Pids (and states) of processes below <pid> whose cmdline has <needle>.
    With <leaders>, only process-group leaders: the gateway starts each
    serve program in a group of its own, and whatever that program forks
    (a pyenv shim's bash subshells carry the script's name in their
    cmdline: about 40 of them at each start) stays in its group."""
    parent, cmds, states, groups = {}, {}, {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
            state, ppid, pgrp = rest[0], int(rest[1]), int(rest[2])
        except (OSError, ValueError, IndexError):
            continue
        p = int(d)
        cmds[p], states[p], parent[p], groups[p] = cmd, state, ppid, pgrp
    out = []
    for p, cmd in cmds.items():
        if needle not in cmd or (leaders and groups[p] != p):
            continue
        q = p
        while q > 1 and q != pid:
            q = parent.get(q, 0)
        if q == pid:
            out.append((p, states[p]))
    return sorted(out)


def alive_pids(pids):
    """Those of <pids> that still exist, zombies included."""
    out = []
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                out.append((p, f.read().rsplit(")", 1)[1].split()[0]))
        except OSError:
            pass
    return out


class SlowContainer:
    """A SageMaker-contract container in this process on a free port: /ping
    200, /invocations answers each CSV row's sum after <delay> s."""

    def __init__(self, delay, ping_delay=0.0):
        outer = self
        self.delay = delay
        self.ping_delay = ping_delay
        self.ping_status = 200
        self.calls = 0

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                time.sleep(outer.ping_delay)
                self.send_response(outer.ping_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                outer.calls += 1
                time.sleep(outer.delay)
                out = "".join("%r\n" % sum(float(x) for x in l.split(","))
                              for l in body.decode().splitlines() if l.strip()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        ThreadingHTTPServer.daemon_threads = True
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


# ---- the attacks -----------------------------------------------------------

def auth_attacks(gw):
    body = json.dumps({"MaxResults": 1}).encode()
    host = "127.0.0.1:%d" % gw.admin_port
    st, et, msg, _ = call(gw, "ListModels", body, sign=False)
    check(st in (400, 403) and et == "MissingAuthenticationTokenException",
          "auth: an unsigned call is refused MissingAuthenticationToken: %d %s %s" % (st, et, msg))
    st, et, msg, _ = call(gw, "ListModels", body, secret="WRONG")
    check(st == 403 and et in ("InvalidSignatureException", "SignatureDoesNotMatch"),
          "auth: a wrong secret is refused 403: %d %s %s" % (st, et, msg))
    st, et, msg, _ = call(gw, "ListModels", body, key="AKIDNOBODY")
    check(st == 403 and et == "UnrecognizedClientException",
          "auth: an unknown key is refused 403 UnrecognizedClient: %d %s %s" % (st, et, msg))
    now = datetime.datetime.now(datetime.timezone.utc)
    for delta, what in ((-20, "20 min old"), (20, "20 min ahead"), (-60 * 24 * 400, "a year old")):
        st, et, msg, _ = call(gw, "ListModels", body,
                              amz_date=now + datetime.timedelta(minutes=delta))
        check(st == 403 and et == "InvalidSignatureException" and (
            "expired" in (msg or "") or "not yet current" in (msg or "")),
              "auth: a signature %s is refused 403 'Signature expired/not yet current': %d %s %s"
              % (what, st, et, msg))
    # The body changed after signing (the payload hash signed is the old one's).
    hdrs = sigv4_headers(host, "SageMaker.ListModels", body)
    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    c.request("POST", "/", body=b'{"MaxResults":2}', headers=hdrs)
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 403, "auth: a body changed after signing is refused 403: %d" % r.status)
    # The target changed after signing.
    hdrs = dict(sigv4_headers(host, "SageMaker.ListModels", body))
    hdrs["X-Amz-Target"] = "SageMaker.DeleteModel"
    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    c.request("POST", "/", body=body, headers=hdrs)
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 403, "auth: an X-Amz-Target changed after signing is refused 403: %d"
          % r.status)
    # X-Amz-Target left out of SignedHeaders: a DescribeEndpoint captured
    # (logs, a proxy) could be replayed as DeleteEndpoint with the same body
    # within the skew window. AWS requires every x-amz-* header signed.
    dbody = json.dumps({"EndpointName": "nobody"}).encode()
    hdrs = dict(sigv4_headers(host, None, dbody))
    hdrs["X-Amz-Target"] = "SageMaker.DeleteEndpoint"
    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    c.request("POST", "/", body=dbody, headers=hdrs)
    r = c.getresponse()
    out = r.read()
    c.close()
    check(r.status == 403, "auth: an X-Amz-Target not among the SignedHeaders is refused 403 (else "
          "a captured Describe replays as a Delete): %d %r" % (r.status, out[:200]))
    # Garbage and oversized Authorization headers: refused, gateway alive.
    for auth in ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=,SignedHeaders=,Signature=",
                 "AWS4-HMAC-SHA256 Credential=" + "A/" * 3000 + ", SignedHeaders=host, Signature=00",
                 "AWS4-HMAC-SHA256 Credential=%s/20200101/us-east-1/sagemaker/aws4_request, "
                 "SignedHeaders=%s, Signature=%s" % (ADMIN_KEY, ";".join(["host"] * 500), "0" * 64),
                 "Basic QUtJRFRFU1Q6U0VDUkVU"):
        hdrs = dict(sigv4_headers(host, "SageMaker.ListModels", body))
        hdrs["Authorization"] = auth
        c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
        try:
            c.request("POST", "/", body=body, headers=hdrs)
            r = c.getresponse()
            r.read()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            status = repr(e)
        c.close()
        check(status in (400, 403, 431), "auth: Authorization %r... refused 4xx: %s"
              % (auth[:60], status))
    check(gw.alive(), "auth: gateway alive after the bad signatures")


def input_attacks(gw):
    def raw(op, body, etype, what, status=400):
        st, et, msg, _ = call(gw, op, body)
        return check(st == status and et == etype, "input: %s: want %d %s, got %d %s %r"
                     % (what, status, etype, st, et, msg))

    raw("ListModels", b"{", "SerializationException", "a truncated JSON body")
    raw("ListModels", b"[]", "SerializationException", "a JSON array body")
    raw("ListModels", b"\"x\"", "SerializationException", "a JSON string body")
    raw("ListModels", b"\xff\xfe{}", "SerializationException", "a body that is not UTF-8")
    st, et, msg, _ = call(gw, "ListModels", b'{"a":' * 200000 + b"1" + b"}" * 200000)
    check(st in (400, 413), "input: 200000 nested objects refused 400/413: %d %s" % (st, et))
    st, et, msg, _ = call(gw, "ListModels", b'{"a":' + b"[" * 400000 + b"]" * 400000 + b"}")
    check(st in (400, 413), "input: 400000 nested arrays refused 400/413: %d %s" % (st, et))
    check(gw.alive(), "input: gateway alive after the deep nesting")
    raw("DescribeModel", {"ModelName": 5}, "SerializationException", "a number as ModelName")
    raw("DescribeEndpoint", {"EndpointName": ["a"]}, "SerializationException",
        "a list as EndpointName")
    raw("DescribeEndpoint", {"EndpointName": None}, "ValidationException", "a null EndpointName")
    raw("DescribeModel", {"ModelName": "mod\u00e8le"}, "ValidationException", "a unicode name")
    raw("DescribeModel", {"ModelName": "a\u0000b"}, "SerializationException",
        "a name with \\u0000 (jansson refuses it)")
    raw("DescribeModel", {"ModelName": "a" * 64}, "ValidationException", "a 64-character name")
    raw("DescribeModel", {"ModelName": "-a"}, "ValidationException", "a name starting with '-'")
    raw("DescribeModel", {"ModelName": "a" * 100000}, "ValidationException", "a 100000-char name")
    st, et, msg, _ = model(gw, "N" * 63, "kmeans", "file://" + KM2D_PATH)
    check(st == 200, "input: a 63-character name is accepted: %d %s %s" % (st, et, msg))
    st, et, msg, _ = model(gw, "n" * 63, "kmeans", "file://" + KM2D_PATH)
    check(st == 400 and "already existing" in (msg or ""),
          "input: the same 63-character name in another case is a duplicate: %d %s" % (st, msg))
    raw("DescribeModel", b'{"ModelName":"a","ModelName":"b"}', "SerializationException",
        "duplicate keys")
    for v, et in ((1000000, "ValidationException"), (0, "ValidationException"),
                  (-5, "ValidationException"), (5.0, "SerializationException"),
                  ("5", "SerializationException"), (True, "SerializationException")):
        raw("ListModels", {"MaxResults": v}, et, "MaxResults %r" % (v,))
    raw("ListModels", b'{"MaxResults": 1180591620717411303424}', "SerializationException",
        "MaxResults 2**70 (overflows the parser)")
    raw("ListModels", b'{"CreationTimeAfter": 1e999}', "SerializationException",
        "CreationTimeAfter 1e999")
    raw("ListModels", {"CreationTimeAfter": "yesterday"}, "SerializationException",
        "CreationTimeAfter as a word")
    for tok in ("garbage", "infergate-page-", "infergate-page-99999999999999999999999",
                "infergate-page--1", "infergate-page-1x", "x" * 9000):
        raw("ListModels", {"NextToken": tok}, "ValidationException", "NextToken %r" % tok[:40])
    raw("ListModels", {"SortBy": "Status"}, "ValidationException", "SortBy Status on models")
    raw("ListEndpoints", {"NameContains": "a*"}, "ValidationException", "NameContains 'a*'")
    # Model data and images.
    fifo = os.path.join(tmp, "a-fifo")
    os.mkfifo(fifo)
    for url, what in (("s3://bucket/model.tar.gz", "s3://"),
                      ("file://relative/model.json", "a relative file:// path"),
                      ("file:///etc", "a directory"), ("file://" + fifo, "a FIFO"),
                      ("file:///dev/zero", "a device"), ("file:///nonexistent/x", "a missing file"),
                      ("http://127.0.0.1:1/model.json", "an http:// ModelDataUrl"),
                      ("file://" + tmp + "/../../etc", "a path with .. to a directory")):
        st, et, msg, _ = model(gw, "bad-url", "kmeans", url)
        check(st == 400 and et == "ValidationException",
              "input: ModelDataUrl %s refused: %d %s %s" % (what, st, et, msg))
    for image, what in (("file:///etc/passwd", "a file that is not executable"),
                        ("file:///bin", "a directory"), ("file://bin/sh", "a relative path"),
                        ("file:///nonexistent", "a missing program"), ("docker.io/evil:latest",
                                                                     "an unknown image"),
                        ("", "an empty Image"), ("ftp://x/y", "ftp://")):
        st, et, msg, _ = model(gw, "bad-image", image)
        check(st == 400 and et == "ValidationException",
              "input: Image %s (%r) refused: %d %s %s" % (what, image, st, et, msg))
    # Environment maps.
    for env, what in (({"K%d" % i: "v" for i in range(101)}, "101 entries"),
                      ({"A=B": "v"}, "a key with '='"), ({"1A": "v"}, "a key starting with a digit"),
                      ({"A": 5}, "a number as value"), ({"A": "x" * 1025}, "a 1025-byte value"),
                      ({"K%d" % i: "x" * 1000 for i in range(40)}, "40 KB in all"),
                      (["A=B"], "a list")):
        st, et, msg, _ = model(gw, "bad-env", "file://" + BYO, env=env)
        check(st == 400 and et in ("ValidationException", "SerializationException"),
              "input: Environment with %s refused: %d %s %s" % (what, st, et, msg))
    # Variants.
    ok(gw, "CreateModel", {"ModelName": "v-m", "PrimaryContainer": {
        "Image": "kmeans", "ModelDataUrl": "file://" + KM2D_PATH}}, "input: v-m")
    for pvs, what in (([], "no variants"),
                      ([{"VariantName": "V%d" % i, "ModelName": "v-m"} for i in range(11)],
                       "11 variants"),
                      ([{"VariantName": "A", "ModelName": "v-m"},
                        {"VariantName": "a", "ModelName": "v-m"}], "A and a"),
                      ([{"VariantName": "A", "ModelName": "v-m", "InitialVariantWeight": -1}],
                       "a negative weight"),
                      ([{"VariantName": "A", "ModelName": "v-m", "InitialVariantWeight": "1"}],
                       "a weight as a string"),
                      ([{"VariantName": "A", "ModelName": "v-m", "InitialInstanceCount": 1.5}],
                       "1.5 instances"),
                      ([{"VariantName": "A", "ModelName": "v-m", "InitialInstanceCount": 0}],
                       "0 instances"),
                      ([{"VariantName": "A", "ModelName": "v-m",
                         "ContainerStartupHealthCheckTimeoutInSeconds": 99999}], "a 99999 s timeout"),
                      ([{"VariantName": "A", "ModelName": "nope"}], "a missing model"),
                      ([{"VariantName": "A/B", "ModelName": "v-m"}], "a variant name with '/'"),
                      ("x", "a string")):
        st, et, msg, _ = call(gw, "CreateEndpointConfig", {"EndpointConfigName": "bad-c",
                                                           "ProductionVariants": pvs})
        check(st == 400 and et in ("ValidationException", "SerializationException"),
              "input: ProductionVariants with %s refused: %d %s %s" % (what, st, et, msg))
    raw("CreateEndpoint", {"EndpointName": "no-cfg", "EndpointConfigName": "nope"},
        "ValidationException", "CreateEndpoint of a missing config")
    st, et, msg, _ = call(gw, "ListModels", {}, target="SageMaker.CreateTrainingJob")
    check(st == 400 and et == "UnknownOperationException",
          "input: CreateTrainingJob is an UnknownOperation: %d %s" % (st, et))
    st, et, msg, _ = call(gw, "ListModels", {}, target="SageMaker." + "X" * 5000)
    check(st in (400, 431), "input: a 5000-char operation refused: %d %s" % (st, et))
    st, et, msg, _ = call(gw, "ListModels", b"{" + b" " * (1 << 20) + b"}")
    check(st == 413, "input: a body over 1 MiB refused 413: %d %s" % (st, et))
    check(gw.alive(), "input: gateway alive after the bad input")


def list_memory(gw):
    """Many large model documents; many concurrent ListModels; clients that
    leave before the answer: the RSS stays bounded, the loop answers."""
    big = {"E%03d" % i: "x" * 320 for i in range(100)}  # ~32 KiB of names and values
    n = 1000  # ADM_MAX_RESOURCES
    t = time.time()
    done = [0]

    def make(lo, hi):
        for i in range(lo, hi):
            st, et, msg, _ = model(gw, "big-%04d" % i, "file://" + BYO, env=big)
            if st == 200:
                done[0] += 1
    ths = [threading.Thread(target=make, args=(k * n // 4, (k + 1) * n // 4)) for k in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    log("%d models of ~33 KiB created in %.1f s" % (done[0], time.time() - t))
    lst = ok(gw, "ListModels", {"MaxResults": 100}, "memory: list")
    pages, tok = 1, lst.get("NextToken")
    while tok and pages < 20:
        tok = ok(gw, "ListModels", {"MaxResults": 100, "NextToken": tok}, "memory: page").get(
            "NextToken")
        pages += 1
    check(done[0] > 990 and pages == 10, "memory: models created up to the limit of 1000 (%d "
          "created here, %d pages of 100)" % (done[0], pages))
    refused(gw, "CreateModel", {"ModelName": "one-too-many", "PrimaryContainer": {
        "Image": "kmeans", "ModelDataUrl": "file://" + KM2D_PATH}}, "ResourceLimitExceeded",
        "memory: model 1001")
    rss0 = rss_kb(gw.proc.pid)
    peak = [rss0]
    lat = []
    stop = threading.Event()
    answers, odd = [], []

    def sampler():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kb(gw.proc.pid))
            t0 = time.time()
            try:
                st, _, _ = invoke(gw.port, "cfg-ep", conn=c)
            except (OSError, http.client.HTTPException):
                st = 0
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            lat.append((time.time() - t0, st))
            time.sleep(0.01)
        c.close()

    def lister(leave):
        body = json.dumps({"MaxResults": 100, "SortBy": "Name"}).encode()
        host = "127.0.0.1:%d" % gw.admin_port
        hdrs = sigv4_headers(host, "SageMaker.ListModels", body)
        req = b"POST / HTTP/1.1\r\n" + b"".join(
            ("%s: %s\r\n" % kv).encode() for kv in hdrs.items()) + \
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        s = socket.create_connection(("127.0.0.1", gw.admin_port), timeout=20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(req)
        if leave:
            s.close()
            return
        time.sleep(2)  # a slow reader
        got = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
                if b"\r\n\r\n" in got:
                    head, rest = got.split(b"\r\n\r\n", 1)
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                    if cl and len(rest) >= int(cl[0].split(b":")[1]):
                        break
        except OSError:
            pass
        s.close()
        answers.append(got.split(b"\r\n", 1)[0])
        if not (answers[-1].startswith(b"HTTP/1.1 200") or b" 400 " in answers[-1]):
            odd.append(got[:600])

    smp = threading.Thread(target=sampler)
    smp.start()
    ths = [threading.Thread(target=lister, args=(i % 2 == 0,)) for i in range(64)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)
    time.sleep(0.5)
    stop.set()
    smp.join(30)
    grow = (peak[0] - rss0) / 1024.0
    worst = max([l for l, _ in lat] or [0])
    log("64 ListModels over %d x 33 KiB: RSS %d -> %d KiB peak; invoke latency max %.3f s over %d"
        % (n, rss0, peak[0], worst, len(lat)))
    check(all(a.startswith(b"HTTP/1.1 200") or b" 400 " in a for a in answers),
          "memory: every ListModels a slow reader waited for answered 200 or 400 Throttling: %r "
          "(the others: %r)" % (sorted(set(answers))[:4], odd[:2]))
    check(all(s == 200 for _, s in lat), "memory: invocations during the lists all 200: %r"
          % sorted(set(s for _, s in lat)))
    check(grow < 150, "memory: 64 concurrent ListModels over %d docs of 33 KiB grew the RSS by "
          "%.0f MiB (< 150)" % (n, grow))
    check(worst < 1.0, "memory: the event loop kept answering InvokeEndpoint during the lists: "
          "worst latency %.3f s (< 1 s)" % worst)
    # Clean up the store for the next sections (lists are read in full).
    for i in range(n):
        call(gw, "DeleteModel", {"ModelName": "big-%04d" % i})


def variant_memory(gw):
    """Memory of a served variant: an endpoint with 10 kmeans variants is
    created 20 times; the RSS growth per variant, times the endpoints the
    store allows with 10 variants each, must fit a production box."""
    ok(gw, "CreateModel", {"ModelName": "vm-m", "PrimaryContainer": {
        "Image": "kmeans", "ModelDataUrl": "file://" + KM2D_PATH}}, "variant memory: model")
    st, et, msg, _ = config(gw, "vm-c", [("V%d" % i, "vm-m", 1.0) for i in range(10)])
    check(st == 200, "variant memory: config of 10 variants: %d %s %s" % (st, et, msg))
    rss0 = rss_kb(gw.proc.pid)
    for i in range(20):
        call(gw, "CreateEndpoint", {"EndpointName": "vm-%02d" % i, "EndpointConfigName": "vm-c"})
    for i in range(20):
        wait_ep(gw, "vm-%02d" % i, ("InService", "Failed"), 20, "variant memory")
    per = (rss_kb(gw.proc.pid) - rss0) / 200.0
    log("RSS per served variant: %.1f KiB; x 10 variants x 1000 endpoints = %.0f MiB"
        % (per, per * 10000 / 1024))
    check(per * 10000 / 1024 < 2048, "memory: 1000 endpoints x 10 variants (what the store "
          "allows) would take %.0f MiB in every gateway (%.1f KiB a variant): no cap "
          "(IG_GATEWAY_MAX_ADMIN_VARIANTS is not enforced)" % (per * 10000 / 1024, per))
    for i in range(20):
        call(gw, "DeleteEndpoint", {"EndpointName": "vm-%02d" % i})
    for i in range(20):
        wait_ep(gw, "vm-%02d" % i, ("gone",), 20, "variant memory: delete")


def flip_under_load(gw):
    """UpdateEndpoint back and forth 20 times between two configs while 4
    clients invoke (2 unary, 1 response stream, 1 with TargetVariant gone
    wrong on purpose is not counted); another endpoint is deleted meanwhile
    and a third keeps serving: zero failed invocations."""
    for mn, path in (("flip-blue", KM2D_PATH), ("flip-green", GREEN_PATH)):
        ok(gw, "CreateModel", {"ModelName": mn, "PrimaryContainer": {
            "Image": "kmeans", "ModelDataUrl": "file://" + path}}, "flip: " + mn)
    config(gw, "flip-a", [("Blue", "flip-blue", 1.0)])
    config(gw, "flip-b", [("Green", "flip-green", 1.0)])
    config(gw, "flip-ab", [("Blue", "flip-blue", 1.0), ("Green", "flip-green", 1.0)])
    for ep in ("Flip", "Bystander", "Victim"):
        ok(gw, "CreateEndpoint", {"EndpointName": ep, "EndpointConfigName": "flip-a"},
           "flip: create " + ep)
    for ep in ("Flip", "Bystander", "Victim"):
        wait_ep(gw, ep, ("InService",), 15, "flip")
    stop = threading.Event()
    res = {"Flip": [], "Bystander": [], "stream": [], "transform": [], "h2": []}

    def transformer():
        while not stop.is_set():
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            try:
                c.request("POST", "/transform/Flip", body=BODY * 50,
                          headers={"Content-Type": "text/csv", "Accept": "text/csv"})
                r = c.getresponse()
                out = r.read().decode()
                n = len(ROWS)
                lines = out.splitlines(True)
                good = len(lines) == 50 * n and all(
                    "".join(lines[k:k + n]) in WANT_CSV for k in range(0, len(lines), n))
                res["transform"].append((r.status, None, good, out[:200]))
            except (OSError, http.client.HTTPException) as e:
                res["transform"].append((repr(e), None, False, ""))
            c.close()

    def unary(ep):
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        while not stop.is_set():
            try:
                st, h, out = invoke(gw.port, ep, conn=c)
                v = h.get("x-amzn-invoked-production-variant")
                res[ep].append((st, v, out.decode() == WANT.get(v), out[:200]))
            except (OSError, http.client.HTTPException) as e:
                res[ep].append((repr(e), None, False, b""))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        c.close()

    def streamer():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        while not stop.is_set():
            try:
                st, h, out = invoke(gw.port, "Flip", conn=c, stream=True)
                v = h.get("x-amzn-invoked-production-variant")
                res["stream"].append((st, v, es_payload(out).decode() == WANT.get(v), out[:200]))
            except (OSError, http.client.HTTPException) as e:
                res["stream"].append((repr(e), None, False, b""))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        c.close()

    def h2er():
        """h2c: 4 streams at a time, every other one reset right after its
        body (the request freed while its batch may be in flight)."""
        from iglib import H2Client
        while not stop.is_set():
            try:
                h = H2Client(gw.port)
                sids = []
                for k in range(4):
                    sid = h.open("/endpoints/Flip/invocations",
                                 [("content-type", "text/csv")])
                    h.send_all(sid, BODY.encode(), end=True)
                    if k % 2:
                        h.reset(sid)
                    else:
                        sids.append(sid)
                for sid in sids:
                    h.wait(sid, 10)
                    v = h.headers.get(sid, {}).get("x-amzn-invoked-production-variant")
                    st = h.headers.get(sid, {}).get(":status")
                    res["h2"].append((int(st or 0), v, h.data.get(sid, b"").decode() == WANT.get(v),
                                      h.data.get(sid, b"")[:200]))
                h.close()
            except (OSError, ValueError) as e:
                res["h2"].append((repr(e), None, False, b""))

    def transform_leaver():
        """A /transform stream whose client leaves half-way through its body."""
        while not stop.is_set():
            try:
                sk = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
                sk.sendall(b"POST /transform/Flip HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                           b"Accept: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = (BODY * 20).encode()
                sk.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                time.sleep(0.03)
                sk.close()
            except OSError:
                pass

    ths = [threading.Thread(target=unary, args=("Flip",)) for _ in range(2)]
    ths += [threading.Thread(target=h2er), threading.Thread(target=transform_leaver)]
    ths += [threading.Thread(target=streamer), threading.Thread(target=unary, args=("Bystander",)),
            threading.Thread(target=transformer)]
    for th in ths:
        th.start()
    time.sleep(0.2)
    slow, upd_fail = [], []
    for i in range(20):
        cfg = ("flip-b", "flip-ab", "flip-a")[i % 3]
        t = time.time()
        st, et, msg, _ = call(gw, "UpdateEndpoint", {"EndpointName": "Flip",
                                                     "EndpointConfigName": cfg})
        if st != 200:
            upd_fail.append((i, st, et, msg))
            continue
        st2 = 0
        d = wait_ep(gw, "Flip", ("InService", "Failed"), 15, "flip %d" % i)
        if d and (d.get("EndpointConfigName") != cfg and st2 != 200 or d.get("FailureReason")):
            upd_fail.append((i, "after the update to %s: %s %s %s" % (
                cfg, d.get("EndpointStatus"), d.get("EndpointConfigName"), d.get("FailureReason"))))
        slow.append(time.time() - t)
        time.sleep(0.1)  # some load on each config
        if i == 5:
            call(gw, "DeleteEndpoint", {"EndpointName": "Victim"})
    time.sleep(0.3)
    stop.set()
    for th in ths:
        th.join(30)
    wait_ep(gw, "Victim", ("gone",), 15, "flip: Victim deleted under load")
    log("20 updates in %.1f s (slowest %.2f s); %d unary, %d stream, %d bystander calls"
        % (sum(slow), max(slow or [0]), len(res["Flip"]), len(res["stream"]),
           len(res["Bystander"])))
    check_eq(upd_fail, [], "flip: 20 updates each accepted, each InService on its config")
    for k in ("Flip", "stream", "Bystander", "transform", "h2"):
        bad = [r for r in res[k] if r[0] != 200 or not r[2]]
        check(len(res[k]) > 20 and not bad, "flip: %s: %d calls across 20 UpdateEndpoint and a "
              "DeleteEndpoint of another endpoint, %d failed or wrong, e.g. %r"
              % (k, len(res[k]), len(bad), bad[:3]))
    check(gw.alive(), "flip: gateway alive")


def delete_in_flight(gw):
    """Slow requests (unary and streamed) on an http:// container endpoint:
    DeleteEndpoint, UpdateEndpoint and clients leaving mid-request. The
    requests in flight are answered (or their client is gone); the
    endpoint goes; the gateway lives (run under SANITIZE=1 for the frees)."""
    slow = SlowContainer(1.0)
    try:
        ok(gw, "CreateModel", {"ModelName": "slow-m", "PrimaryContainer": {"Image": slow.url}},
           "in flight: model")
        config(gw, "slow-c", [("AllTraffic", "slow-m", 1.0)])
        config(gw, "slow-c2", [("Other", "slow-m", 1.0)])
        for ep in ("Slow-Del", "Slow-Upd"):
            ok(gw, "CreateEndpoint", {"EndpointName": ep, "EndpointConfigName": "slow-c"},
               "in flight: create " + ep)
            wait_ep(gw, ep, ("InService",), 15, "in flight")
        out = []

        def one(ep, stream, leave):
            try:
                if leave:
                    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
                    path = "/endpoints/%s/invocations%s" % (ep, "-response-stream" if stream else "")
                    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                               "Accept: text/csv\r\nX-Amzn-SageMaker-Accept: text/csv\r\n"
                               "Content-Length: 4\r\n\r\n1,2\n" % path).encode())
                    time.sleep(0.3)
                    s.close()
                    return
                st, h, body = invoke(gw.port, ep, body="1,2\n", stream=stream,
                                     accept="text/csv")
                out.append((ep, stream, st, es_payload(body) if stream else body))
            except (OSError, http.client.HTTPException) as e:
                out.append((ep, stream, repr(e), b""))
        ths = []
        for ep in ("Slow-Del", "Slow-Upd"):
            for stream in (False, True):
                for leave in (False, True, False):
                    ths.append(threading.Thread(target=one, args=(ep, stream, leave)))
        for th in ths:
            th.start()
        time.sleep(0.4)
        call(gw, "DeleteEndpoint", {"EndpointName": "Slow-Del"})
        st, et, msg, _ = call(gw, "DeleteEndpoint", {"EndpointName": "Slow-Del"})
        check(st == 200, "in flight: a second DeleteEndpoint while Deleting answers 200: %d %s %s"
              % (st, et, msg))
        call(gw, "UpdateEndpoint", {"EndpointName": "Slow-Upd", "EndpointConfigName": "slow-c2"})
        for th in ths:
            th.join(30)
        bad = [o for o in out if o[2] != 200 or o[3] != b"3.0\n"]
        check(len(out) == 8 and not bad, "in flight: 8 slow calls across a DeleteEndpoint and an "
              "UpdateEndpoint all answered 3.0: %r" % (bad or out)[:4])
        wait_ep(gw, "Slow-Del", ("gone",), 10, "in flight: deleted")
        st, et, msg, _ = call(gw, "DeleteEndpoint", {"EndpointName": "Slow-Del"})
        check(st == 400 and "Could not find" in (msg or ""),
              "in flight: DeleteEndpoint of a deleted endpoint: not found: %d %s" % (st, msg))
        d = wait_ep(gw, "Slow-Upd", ("InService",), 10, "in flight: updated")
        check_eq((d or {}).get("EndpointConfigName"), "slow-c2", "in flight: Slow-Upd updated")
        st, h, body = invoke(gw.port, "Slow-Upd", body="2,2\n", accept="text/csv")
        check_eq((st, body, h.get("x-amzn-invoked-production-variant")), (200, b"4.0\n", "Other"),
                 "in flight: Slow-Upd serves its new variant")
        call(gw, "DeleteEndpoint", {"EndpointName": "Slow-Upd"})
        wait_ep(gw, "Slow-Upd", ("gone",), 10, "in flight: Slow-Upd deleted")
        check(gw.alive(), "in flight: gateway alive")
    finally:
        slow.close()


def update_while_updating(gw):
    """An update waiting for a container's slow /ping: Updating meanwhile;
    a second update is refused; the old variant serves; DeleteEndpoint
    during the update removes the endpoint and its pending deployment."""
    sp = SlowContainer(0.0, ping_delay=1.2)
    try:
        ok(gw, "CreateModel", {"ModelName": "sp-m", "PrimaryContainer": {"Image": sp.url}},
           "updating: model")
        config(gw, "sp-c", [("Slow", "sp-m", 1.0)])
        for ep in ("Upd2", "Upd3"):
            ok(gw, "CreateEndpoint", {"EndpointName": ep, "EndpointConfigName": "flip-a"},
               "updating: create " + ep)
            wait_ep(gw, ep, ("InService",), 15, "updating: " + ep)
            ok(gw, "UpdateEndpoint", {"EndpointName": ep, "EndpointConfigName": "sp-c"},
               "updating: update " + ep)
        d = describe(gw, "Upd2")
        check_eq((d or {}).get("EndpointStatus"), "Updating", "updating: Updating while the new "
                 "container's /ping is slow")
        refused(gw, "UpdateEndpoint", {"EndpointName": "Upd2", "EndpointConfigName": "flip-b"},
                "ValidationException", "updating: UpdateEndpoint during Updating")
        st, h, out = invoke(gw.port, "Upd2")
        check_eq((st, h.get("x-amzn-invoked-production-variant")), (200, "Blue"),
                 "updating: the old variant serves during the update")
        ok(gw, "DeleteEndpoint", {"EndpointName": "Upd3"}, "updating: delete during Updating")
        wait_ep(gw, "Upd3", ("gone",), 10, "updating: deleted during Updating")
        d = wait_ep(gw, "Upd2", ("InService",), 10, "updating: the slow update")
        check_eq((d or {}).get("EndpointConfigName"), "sp-c", "updating: the slow update landed")
        time.sleep(1.5)
        check(describe(gw, "Upd3") is None, "updating: an endpoint deleted while Updating stays "
              "deleted once its pending deployment would have finished: %r"
              % (describe(gw, "Upd3"),))
        st, h, out = invoke(gw.port, "Upd3")
        check_eq(st, 400, "updating: the deleted endpoint is not served")
        call(gw, "DeleteEndpoint", {"EndpointName": "Upd2"})
        wait_ep(gw, "Upd2", ("gone",), 10, "updating: Upd2 deleted")
    finally:
        sp.close()


def byo_flip(gw):
    """UpdateEndpoint between two serve programs (scale 2 and scale 3) 6
    times while 2 clients invoke: zero failures, every answer from one of
    the two; the retired children are stopped, one child left."""
    for name, scale in (("bf-2", "2"), ("bf-3", "3")):
        ok(gw, "CreateModel", {"ModelName": name, "PrimaryContainer": {
            "Image": "file://" + BYO, "Environment": {"BYO_SCALE": scale}}}, "byo flip: " + name)
        config(gw, name + "-c", [("S" + scale, name, 1.0)])
    # By pid alone: the Byo endpoint's child (section "bring your own serve
    # program") lives on, and a sample that caught it running ('R', its
    # serve_forever wakes every 0.5 s) instead of sleeping counted it as one
    # of ours (CI: "one left" got 2).
    before = {p for p, _ in procs_below(gw.proc.pid, "tests/byo/serve", leaders=True)}

    def mine():
        return [k for k in procs_below(gw.proc.pid, "tests/byo/serve", leaders=True)
                if k[0] not in before]
    ok(gw, "CreateEndpoint", {"EndpointName": "Byo-Flip", "EndpointConfigName": "bf-2-c"},
       "byo flip: create")
    wait_ep(gw, "Byo-Flip", ("InService",), 15, "byo flip")
    stop = threading.Event()
    res = []
    want = {"S2": b"6.0\n", "S3": b"9.0\n"}

    def hammer():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        while not stop.is_set():
            try:
                st, h, out = invoke(gw.port, "Byo-Flip", body="1,2\n", conn=c, accept="text/csv")
                v = h.get("x-amzn-invoked-production-variant")
                res.append((st, v, out == want.get(v), out[:200]))
            except (OSError, http.client.HTTPException) as e:
                res.append((repr(e), None, False, b""))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        c.close()
    ths = [threading.Thread(target=hammer) for _ in range(2)]
    for th in ths:
        th.start()
    t = time.time()
    for i in range(6):
        cfg = "bf-3-c" if i % 2 == 0 else "bf-2-c"
        ok(gw, "UpdateEndpoint", {"EndpointName": "Byo-Flip", "EndpointConfigName": cfg},
           "byo flip: update %d" % i)
        d = wait_ep(gw, "Byo-Flip", ("InService", "Failed"), 15, "byo flip %d" % i)
        check(d is not None and d.get("EndpointConfigName") == cfg and not d.get("FailureReason"),
              "byo flip: update %d InService on %s: %r" % (i, cfg, (d or {}).get("FailureReason")))
    stop.set()
    for th in ths:
        th.join(30)
    bad = [r for r in res if r[0] != 200 or not r[2]]
    log("byo flip: 6 updates in %.1f s, %d calls" % (time.time() - t, len(res)))
    check(len(res) > 20 and not bad, "byo flip: %d calls across 6 updates between serve programs, "
          "%d failed or wrong, e.g. %r" % (len(res), len(bad), bad[:3]))
    deadline = time.time() + 10
    while len(mine()) > 1 and time.time() < deadline:
        time.sleep(0.05)
    check_eq(len(mine()), 1, "byo flip: the retired serve children stopped: one left")
    call(gw, "DeleteEndpoint", {"EndpointName": "Byo-Flip"})
    wait_ep(gw, "Byo-Flip", ("gone",), 10, "byo flip: deleted")
    deadline = time.time() + 8
    while mine() and time.time() < deadline:
        time.sleep(0.05)
    check_eq(mine(), [], "byo flip: no child after delete")


def churn(gw):
    """30 endpoints created and deleted at once (the deletion while the
    model loads: a cancelled job), an update while Creating refused; then
    none is left and none is served."""
    errs = []
    for i in range(60):
        name = "Churn-%02d" % i
        st, et, msg, _ = call(gw, "CreateEndpoint", {"EndpointName": name,
                                                     "EndpointConfigName": "flip-ab"})
        if st != 200:
            errs.append((name, "create", st, et, msg))
        if i % 10 == 9:
            st, et, msg, _ = call(gw, "UpdateEndpoint", {"EndpointName": name,
                                                         "EndpointConfigName": "flip-a"})
            if not (st == 400 and et == "ValidationException"):
                d = describe(gw, name)
                if (d or {}).get("EndpointStatus") == "Creating" or st != 200:
                    errs.append((name, "update while Creating", st, et, msg))
        time.sleep((i % 20) * 0.001)  # across the deployment's Creating -> InService
        st, et, msg, _ = call(gw, "DeleteEndpoint", {"EndpointName": name})
        if st != 200:
            errs.append((name, "delete", st, et, msg))
            for _ in range(20):  # what a client must do now: retry
                if call(gw, "DeleteEndpoint", {"EndpointName": name})[0] == 200:
                    break
                time.sleep(0.05)
    check_eq(errs, [], "churn: DeleteEndpoint right after CreateEndpoint answers 200 (not 400 "
             "'it changed meanwhile; retry': the CAS lost to the gateway's own Creating -> "
             "InService move, which no client asked for)")
    for i in range(60):
        wait_ep(gw, "Churn-%02d" % i, ("gone",), 10, "churn")
    time.sleep(0.3)
    served = [i for i in range(60) if invoke(gw.port, "Churn-%02d" % i)[0] != 400]
    check_eq(served, [], "churn: no deleted endpoint is served")
    lst = ok(gw, "ListEndpoints", {"NameContains": "churn"}, "churn: list")
    check_eq(lst.get("Endpoints"), [], "churn: none listed")


def status_machine(gw):
    junk = os.path.join(tmp, "junk.json")
    with open(junk, "w") as f:
        f.write("{not json")
    d = deploy(gw, "Junk", "kmeans", "file://" + junk, want=("Failed", "InService"))
    check((d or {}).get("EndpointStatus") == "Failed" and junk in (d or {}).get("FailureReason", ""),
          "status: a model file that does not load -> Failed naming it: %r"
          % ([(d or {}).get("EndpointStatus"), (d or {}).get("FailureReason")],))
    d = deploy(gw, "Wrong-Algo", "pca", "file://" + KM2D_PATH, want=("Failed", "InService"))
    check((d or {}).get("EndpointStatus") == "Failed" and "kmeans" in (d or {}).get(
        "FailureReason", ""), "status: a kmeans model under the pca image -> Failed: %r"
        % ([(d or {}).get("EndpointStatus"), (d or {}).get("FailureReason")],))
    # A secret file as model data: Failed, and its content is not echoed.
    secret = os.path.join(tmp, "secret.txt")
    with open(secret, "w") as f:
        f.write("root:$6$SUPERSECRETHASH:19000:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    d = deploy(gw, "Secret", "kmeans", "file://" + secret, want=("Failed", "InService"))
    fr = (d or {}).get("FailureReason", "")
    check((d or {}).get("EndpointStatus") == "Failed" and "SUPERSECRET" not in fr,
          "status: a secret file as ModelDataUrl -> Failed without quoting it: %r" % fr)
    # A serve program that exits at start.
    d = deploy(gw, "Byo-Exit", "file://" + BYO, env={"BYO_EXIT_AT_START": "3"},
               want=("Failed", "InService"))
    fr = (d or {}).get("FailureReason", "")
    check((d or {}).get("EndpointStatus") == "Failed" and ("3" in fr or "exit" in fr),
          "status: a serve program that exits 3 at start -> Failed saying so: %r"
          % ([(d or {}).get("EndpointStatus"), fr],))
    # Updating a Failed endpoint is refused; deleting it works.
    st, et, msg, _ = call(gw, "UpdateEndpoint", {"EndpointName": "Junk",
                                                 "EndpointConfigName": "Junk-c"})
    check(st == 400, "status: UpdateEndpoint of a Failed endpoint refused: %d %s" % (st, msg))
    for ep in ("Junk", "Wrong-Algo", "Secret", "Byo-Exit"):
        call(gw, "DeleteEndpoint", {"EndpointName": ep})
    for ep in ("Junk", "Wrong-Algo", "Secret", "Byo-Exit"):
        wait_ep(gw, ep, ("gone",), 10, "status: Failed endpoint deleted")
    # A failed update rolls back: InService, FailureReason, old variant serving.
    ok(gw, "CreateEndpoint", {"EndpointName": "Rollback", "EndpointConfigName": "flip-a"},
       "status: Rollback")
    wait_ep(gw, "Rollback", ("InService",), 15, "status: Rollback")
    ok(gw, "UpdateEndpoint", {"EndpointName": "Rollback", "EndpointConfigName": "Junk-c"},
       "status: update to a bad model")
    d = wait_ep(gw, "Rollback", ("InService", "Failed"), 15, "status: rollback")
    check((d or {}).get("EndpointStatus") == "InService" and (d or {}).get("FailureReason") and
          (d or {}).get("EndpointConfigName") == "flip-a",
          "status: a failed update -> InService on the old config with a FailureReason: %r"
          % ({k: (d or {}).get(k) for k in ("EndpointStatus", "EndpointConfigName",
                                            "FailureReason")},))
    st, h, out = invoke(gw.port, "Rollback")
    check_eq((st, h.get("x-amzn-invoked-production-variant"), out.decode()),
             (200, "Blue", WANT["Blue"]), "status: after the failed update the old variant serves")
    ok(gw, "UpdateEndpoint", {"EndpointName": "Rollback", "EndpointConfigName": "flip-b"},
       "status: a good update after the failed one")
    d = wait_ep(gw, "Rollback", ("InService", "Failed"), 15, "status: good update")
    check((d or {}).get("EndpointConfigName") == "flip-b" and not (d or {}).get("FailureReason"),
          "status: the next good update clears the FailureReason: %r" % (d,))
    call(gw, "DeleteEndpoint", {"EndpointName": "Rollback"})
    # A serve program never healthy, startup timeout 2 s: Failed, child gone.
    d = deploy(gw, "Byo-Never", "file://" + BYO, env={"BYO_FAIL_PING": "1"}, t_s=2,
               want=("Failed", "InService"), timeout=10)
    fr = (d or {}).get("FailureReason", "")
    check((d or {}).get("EndpointStatus") == "Failed" and "health check" in fr,
          "status: a serve program failing /ping past its 2 s startup timeout -> Failed: %r" % fr)
    deadline = time.time() + 7
    while procs_below(gw.proc.pid, "tests/byo/serve") and time.time() < deadline:
        time.sleep(0.05)
    check_eq(procs_below(gw.proc.pid, "tests/byo/serve"), [], "status: the child of an endpoint "
             "Failed on its startup timeout is stopped")
    call(gw, "DeleteEndpoint", {"EndpointName": "Byo-Never"})
    wait_ep(gw, "Byo-Never", ("gone",), 10, "status: Byo-Never deleted")
    # Delete during Creating: a serve program whose /ping never answers 200.
    ok(gw, "CreateModel", {"ModelName": "Byo-Sick-m", "PrimaryContainer": {
        "Image": "file://" + BYO, "Environment": {"BYO_FAIL_PING": "1"}}}, "status: sick model")
    config(gw, "Byo-Sick-c", [("AllTraffic", "Byo-Sick-m", 1.0)], timeout=60)
    ok(gw, "CreateEndpoint", {"EndpointName": "Byo-Sick", "EndpointConfigName": "Byo-Sick-c"},
       "status: sick endpoint")
    # (a deployment waits its turn behind the earlier sections' work: up to
    # 30 s on a loaded machine; once in CI it took over 10)
    # (its own: Byo-Exit's, restarted until its deployment failed, may still
    # be about; once in CI it was the one seen, and gone when counted)
    def sick():
        out = []
        for p, _ in procs_below(gw.proc.pid, "tests/byo/serve", leaders=True):
            try:
                with open("/proc/%d/environ" % p, "rb") as f:
                    if b"BYO_FAIL_PING=1" in f.read().split(b"\0"):
                        out.append(p)
            except OSError:
                pass
        return out

    # (kept from the sighting itself: a second look may fall in the window
    # of one of the program's execs, when /proc shows an empty cmdline;
    # once in CI the program was seen, then not seen 1 ms later)
    t0 = time.time()
    kids = sick()
    while not kids and time.time() < t0 + 30:
        time.sleep(0.05)
        kids = sick()
    log("status: the sick serve program seen after %.2f s" % (time.time() - t0))
    if not check(kids, "status: the sick serve program started"):
        print("  gateway log, last 40 lines:\n" + "\n".join(gw.stderr().splitlines()[-40:]),
              flush=True)
    time.sleep(0.5)
    d = describe(gw, "Byo-Sick")
    check_eq((d or {}).get("EndpointStatus"), "Creating", "status: a serve program failing /ping "
             "keeps the endpoint Creating")
    ok(gw, "DeleteEndpoint", {"EndpointName": "Byo-Sick"}, "status: delete during Creating")
    wait_ep(gw, "Byo-Sick", ("gone",), 10, "status: delete during Creating")
    deadline = time.time() + 8
    while alive_pids(kids) and time.time() < deadline:
        time.sleep(0.05)
    check_eq(alive_pids(kids), [], "status: the serve child of an endpoint deleted while "
             "Creating is gone (no orphan, no zombie)")


def byo(gw):
    """tests/byo/serve as Image=file://; serves; its child goes with the
    endpoint."""
    d = deploy(gw, "Byo", "file://" + BYO, env={"BYO_SCALE": "2"}, want=("InService", "Failed"))
    check_eq((d or {}).get("EndpointStatus"), "InService", "byo: tests/byo/serve deployed: %r"
             % ((d or {}).get("FailureReason"),))
    st, h, out = invoke(gw.port, "Byo", body="1,2\n3,4\n", accept="text/csv")
    check_eq((st, out), (200, b"6.0\n14.0\n"), "byo: each row's sum times 2")
    # No Accept (the AWS CLI's invoke-endpoint without --accept): the gateway
    # asks for its default, JSON; the program answers CSV whatever it is
    # asked, and its answer is read as CSV and converted.
    st, h, out = invoke(gw.port, "Byo", body="1,2\n3,4\n")
    check_eq((st, h.get("content-type"), out),
             (200, "application/json", b'{"predictions":[6.0,14.0]}'),
             "byo: no Accept: the program's CSV answer converted to JSON")
    kids = procs_below(gw.proc.pid, "tests/byo/serve", leaders=True)
    check_eq(len(kids), 1, "byo: one serve child: %r" % kids)
    st, et, msg, js = call(gw, "DescribeEndpoint", {"EndpointName": "Byo"})
    text = json.dumps(js)
    check(st == 200 and not [k for k in (js or {}) if k.startswith("_")] and "BYO_SCALE" not in text,
          "byo: DescribeEndpoint shows no private member nor the model's Environment: %s"
          % text[:300])
    st, et, msg, js = call(gw, "ListEndpoints", {"NameContains": "byo"})
    check(st == 200 and "BYO_SCALE" not in json.dumps(js) and "_V" not in json.dumps(js),
          "byo: ListEndpoints shows no private member: %s" % json.dumps(js)[:300])
    return [p for p, _ in kids]


def bash_env_hole(gw, open_gw):
    """The admin API deploys code (docs/admin.md "Who may call it"): with
    admin_auth = on, a key holder running a command as the gateway's user is
    documented. Image file:///bin/bash is started as 'bash serve' with the
    model's Environment, and bash expands BASH_ENV (command substitution
    included): any shell command. With admin_auth = off on loopback, which
    the shipped conf/infergate.conf sets, that is any local user or process
    of the host (any uid, any container sharing the network namespace):
    a local privilege escalation to the gateway's user."""
    bash = "/bin/bash" if os.path.exists("/bin/bash") else "/usr/bin/bash"
    for g, signed in ((gw, True), (open_gw, False)):
        marker = os.path.join(tmp, "pwned-by-bash-env-%s" % ("signed" if signed else "open"))
        body = {"ModelName": "Pwn-m", "PrimaryContainer": {
            "Image": "file://" + bash, "Environment": {"BASH_ENV": "$(touch %s)" % marker}}}
        st, _, _, _ = call(g, "CreateModel", body, sign=signed)
        if st == 200:
            call(g, "CreateEndpointConfig", {"EndpointConfigName": "Pwn-c", "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "Pwn-m",
                 "ContainerStartupHealthCheckTimeoutInSeconds": 2}]}, sign=signed)
            call(g, "CreateEndpoint", {"EndpointName": "Pwn", "EndpointConfigName": "Pwn-c"},
                 sign=signed)
            deadline = time.time() + 4
            while not os.path.exists(marker) and time.time() < deadline:
                time.sleep(0.05)
        ran = os.path.exists(marker)
        log("hole: BASH_ENV through %s admin API: command %s" % (
            "the signed" if signed else "an unsigned (admin_auth = off)", "RAN" if ran else "refused"))
        if not signed:
            check(not ran, "hole: admin_auth = off (the shipped conf/infergate.conf): an UNSIGNED "
                  "CreateModel Image=file://%s Environment BASH_ENV='$(touch FILE)' ran the command "
                  "as the gateway's user (uid %d): any local user of the host runs code as the "
                  "gateway" % (bash, os.getuid()))
        call(g, "DeleteEndpoint", {"EndpointName": "Pwn"}, sign=signed)


def join_during_update(gw, start_gw2):
    """A gateway that starts (a restart, a scale-out) while an endpoint is
    Updating must serve its old variants as the others do until the
    update lands; and the update's failure must leave it serving."""
    sc = SlowContainer(0.0)
    sc.ping_status = 500
    try:
        ok(gw, "CreateModel", {"ModelName": "late-m", "PrimaryContainer": {"Image": sc.url}},
           "join: model")
        config(gw, "late-c", [("Late", "late-m", 1.0)], timeout=60)
        ok(gw, "CreateEndpoint", {"EndpointName": "Join", "EndpointConfigName": "flip-a"},
           "join: create")
        wait_ep(gw, "Join", ("InService",), 15, "join")
        ok(gw, "UpdateEndpoint", {"EndpointName": "Join", "EndpointConfigName": "late-c"},
           "join: update to a container not ready yet")
        gw2 = start_gw2()
        time.sleep(1.0)
        res = {}
        for g in (gw, gw2):
            st, h, out = invoke(g.port, "Join", sign=g if g is gw2 else None)
            res[g is gw2] = (st, h.get("x-amzn-invoked-production-variant"))
        check_eq(res.get(False), (200, "Blue"), "join: the old variant serves during the update")
        check_eq(res.get(True), (200, "Blue"), "join: a gateway started while the endpoint is "
                 "Updating serves the old variant too (it deploys only _Pending: the endpoint is "
                 "not served there until the update lands, up to its 600 s startup timeout)")
        sc.ping_status = 200
        wait_ep(gw, "Join", ("InService",), 15, "join: the update lands")
        time.sleep(0.3)
        for g in (gw, gw2):
            st, h, out = invoke(g.port, "Join", body="1,2\n", accept="text/csv",
                                sign=g if g is gw2 else None)
            check_eq((st, out, h.get("x-amzn-invoked-production-variant")), (200, b"3.0\n", "Late"),
                     "join: after the update both gateways serve the new variant")
        call(gw, "DeleteEndpoint", {"EndpointName": "Join"})
        wait_ep(gw, "Join", ("gone",), 10, "join: deleted")
        return gw2
    finally:
        sc.close()


def store_conns_killed(gw, gw2):
    """CLIENT KILL of the subscriber connections (a blip on one of the two
    connections): a change made through the other gateway right after is
    still served here; then of the command connections."""
    sock = os.path.join(gw.data_dir, "redis.sock")
    p = subprocess.run(["redis-cli", "-s", sock, "CLIENT", "KILL", "TYPE", "pubsub"],
                       capture_output=True, text=True, timeout=10)
    log("CLIENT KILL TYPE pubsub: %s" % p.stdout.strip())
    deadline = time.time() + 5
    while True:  # 503 while the subscriber reconnects: retried, as the SDKs do
        st, et, msg, _ = call(gw2, "CreateEndpoint", {"EndpointName": "After-Blip",
                                                      "EndpointConfigName": "flip-a"})
        if st != 503 or time.time() > deadline:
            break
        time.sleep(0.05)
    check(st == 200, "blip: CreateEndpoint through the other gateway: %d %s %s" % (st, et, msg))
    wait_ep(gw2, "After-Blip", ("InService",), 10, "blip")
    deadline, got = time.time() + 5, None
    while time.time() < deadline:
        got = invoke(gw.port, "After-Blip")[:2]
        if got[0] == 200:
            break
        time.sleep(0.05)
    check_eq((got or (0,))[0], 200, "blip: an endpoint created through another gateway just after "
             "this one's subscriber connection was killed is served here within 5 s")
    p = subprocess.run(["redis-cli", "-s", sock, "CLIENT", "KILL", "TYPE", "normal"],
                       capture_output=True, text=True, timeout=10)
    log("CLIENT KILL TYPE normal: %s" % p.stdout.strip())
    deadline, res = time.time() + 5, None
    while time.time() < deadline:
        res = call(gw, "DescribeEndpoint", {"EndpointName": "Flip"})
        if res[0] == 200:
            break
        if not check(res[0] == 503, "blip: while the command connection reconnects: 503, got %d %s"
                     % res[:2]):
            break
        time.sleep(0.05)
    check_eq((res or (0,))[0], 200, "blip: the admin API answers again after CLIENT KILL")
    call(gw, "DeleteEndpoint", {"EndpointName": "After-Blip"})
    wait_ep(gw, "After-Blip", ("gone",), 10, "blip: deleted")
    deadline = time.time() + 5
    while time.time() < deadline and invoke(gw2.port, "After-Blip", sign=gw2)[0] != 400:
        time.sleep(0.05)
    check_eq(invoke(gw2.port, "After-Blip", sign=gw2)[0], 400, "blip: the deletion reached the "
             "other gateway")


def divergence(gw, gw2):
    """An update that fails on one gateway only (here: a serve program that
    refuses to start under gw2's data_dir; in production: a file:// model
    missing on one host, a container one host cannot reach). Whatever the
    store ends with, every gateway must serve what it says."""
    gate = os.path.join(tmp, "gate.sh")
    with open(gate, "w") as f:
        f.write("#!/bin/sh\ncase \"$SM_MODEL_DIR\" in *FAILHERE*) echo refused here >&2; "
                "exit 3;; esac\nexec %s \"$@\"\n" % BYO)
    os.chmod(gate, 0o755)
    ok(gw, "CreateModel", {"ModelName": "div-m", "PrimaryContainer": {
        "Image": "file://" + gate, "Environment": {"BYO_SCALE": "5"}}}, "diverge: model")
    config(gw, "div-c", [("Div", "div-m", 1.0)])
    ok(gw, "CreateEndpoint", {"EndpointName": "Diverge", "EndpointConfigName": "flip-a"},
       "diverge: create")
    wait_ep(gw, "Diverge", ("InService",), 15, "diverge")
    time.sleep(0.3)
    ok(gw, "UpdateEndpoint", {"EndpointName": "Diverge", "EndpointConfigName": "div-c"},
       "diverge: update")
    time.sleep(0.2)
    d = wait_ep(gw, "Diverge", ("InService",), 15, "diverge: after the update")
    time.sleep(2.0)
    d = describe(gw, "Diverge") or {}
    want = {"flip-a": "Blue", "div-c": "Div"}.get(d.get("EndpointConfigName"))
    log("diverge: the store says %s (%s)" % (d.get("EndpointConfigName"), d.get("FailureReason")))
    served = {}
    for name, g in (("gw", gw), ("gw2", gw2)):
        st, h, out = invoke(g.port, "Diverge", sign=g if g is gw2 else None, accept="text/csv")
        served[name] = (st, h.get("x-amzn-invoked-production-variant"))
    check_eq(served, {"gw": (200, want), "gw2": (200, want)}, "diverge: an update that failed on "
             "one gateway: both gateways serve what the store says (%s, FailureReason %r)"
             % (d.get("EndpointConfigName"), d.get("FailureReason")))
    call(gw, "DeleteEndpoint", {"EndpointName": "Diverge"})
    wait_ep(gw, "Diverge", ("gone",), 10, "diverge: deleted")
    # The other order: the create lands InService through gw, then fails
    # on gw2 (its program exits after 1.5 s): gw2 does not serve an
    # endpoint the store calls InService, and nothing retries.
    late = os.path.join(tmp, "gate-late.sh")
    with open(late, "w") as f:
        f.write("#!/bin/sh\ncase \"$SM_MODEL_DIR\" in *FAILHERE*) sleep 1.5; exit 3;; esac\n"
                "exec %s \"$@\"\n" % BYO)
    os.chmod(late, 0o755)
    ok(gw, "CreateModel", {"ModelName": "div2-m", "PrimaryContainer": {"Image": "file://" + late}},
       "diverge: model 2")
    config(gw, "div2-c", [("Div", "div2-m", 1.0)])
    ok(gw, "CreateEndpoint", {"EndpointName": "Diverge2", "EndpointConfigName": "div2-c"},
       "diverge: create 2")
    d = wait_ep(gw, "Diverge2", ("InService", "Failed"), 15, "diverge 2")
    time.sleep(2.5)
    d = describe(gw, "Diverge2") or {}
    st2 = invoke(gw2.port, "Diverge2", body="1,2\n", sign=gw2, accept="text/csv")[0]
    with urllib.request.urlopen(gw2.url + "/readyz", timeout=5) as r:
        ready2 = json.loads(r.read())
    check(d.get("EndpointStatus") != "InService" or st2 == 200 or
          (ready2.get("status") == "degraded" and "Diverge2" in ready2.get("reason", "")),
          "diverge: an endpoint InService in the store (created through gw) whose deployment "
          "then failed on gw2 is served by gw2 (%d) or gw2's /readyz says why: %r" % (st2, ready2))
    check("deploying again" in gw2.stderr(), "diverge: gw2 retries the deployment that failed")
    call(gw, "DeleteEndpoint", {"EndpointName": "Diverge2"})
    wait_ep(gw, "Diverge2", ("gone",), 10, "diverge: deleted 2")


def redis_kill(gw):
    """kill -9 the embedded redis-server: admin calls 503, invocations go
    on, the store comes back, nothing lost."""
    before = ok(gw, "ListEndpoints", {"MaxResults": 100}, "redis: list before")
    names = sorted(e["EndpointName"] for e in before.get("Endpoints", []))
    with open(os.path.join(gw.data_dir, "redis.pid")) as f:
        rpid = int(f.read().strip())
    # Transitions in flight when the store dies: a create, a delete, an update.
    call(gw, "CreateEndpoint", {"EndpointName": "Kill-New", "EndpointConfigName": "flip-a"})
    call(gw, "CreateEndpoint", {"EndpointName": "Kill-Del", "EndpointConfigName": "flip-a"})
    wait_ep(gw, "Kill-Del", ("InService",), 10, "redis: Kill-Del")
    call(gw, "DeleteEndpoint", {"EndpointName": "Kill-Del"})
    call(gw, "UpdateEndpoint", {"EndpointName": "Bystander", "EndpointConfigName": "flip-b"})
    os.kill(rpid, signal.SIGKILL)
    t = time.time()
    saw503, other, inv = 0, [], []
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    while time.time() - t < 10:
        st, et, msg, _ = call(gw, "DescribeEndpoint", {"EndpointName": "Flip"})
        if st == 503 and et == "ServiceUnavailable":
            saw503 += 1
        elif st != 200:
            other.append((st, et, msg))
        try:
            ist, h, out = invoke(gw.port, "Flip", conn=c)
            inv.append(ist)
        except (OSError, http.client.HTTPException) as e:
            inv.append(repr(e))
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        if st == 200 and saw503:
            break
        time.sleep(0.02)
    c.close()
    log("redis killed: %d x 503 then back after %.2f s" % (saw503, time.time() - t))
    check(saw503 > 0, "redis: admin calls answered 503 ServiceUnavailable while the store was down")
    check_eq(other, [], "redis: no other answer than 200 or 503 while the store was down")
    check(inv and all(s == 200 for s in inv), "redis: InvokeEndpoint kept working while the store "
          "was down: %r" % sorted(set(map(str, inv))))
    deadline = time.time() + 10
    after = {}
    while time.time() < deadline:
        st, et, msg, after = call(gw, "ListEndpoints", {"MaxResults": 100})
        if st == 200:
            break
        time.sleep(0.1)
    got = sorted(e["EndpointName"] for e in (after or {}).get("Endpoints", []))
    check_eq([n for n in got if n not in ("Kill-New", "Kill-Del")], names,
             "redis: every endpoint is still there after the store came back")
    d = wait_ep(gw, "Kill-New", ("InService", "Failed"), 10, "redis: created as the store died")
    check_eq((d or {}).get("EndpointStatus"), "InService", "redis: an endpoint created as the "
             "store died ends InService")
    wait_ep(gw, "Kill-Del", ("gone",), 10, "redis: deleted as the store died")
    d = wait_ep(gw, "Bystander", ("InService",), 10, "redis: updated as the store died")
    check_eq((d or {}).get("EndpointConfigName"), "flip-b", "redis: the update made as the store "
             "died landed")
    st, h, out = invoke(gw.port, "Bystander")
    check_eq((st, h.get("x-amzn-invoked-production-variant")), (200, "Green"),
             "redis: Bystander serves its new config")
    call(gw, "DeleteEndpoint", {"EndpointName": "Kill-New"})
    try:
        with open(os.path.join(gw.data_dir, "redis.pid")) as f:
            check(int(f.read().strip()) != rpid, "redis: a new embedded redis-server runs")
    except (OSError, ValueError) as e:
        check(False, "redis: redis.pid after the restart: %r" % e)


def two_gateways(gw, gw2):
    """One endpoint updated from two gateways at once: one update wins, the
    other is refused; both gateways serve what the store says."""
    res = [None, None]

    def upd(k, g, cfg):
        res[k] = call(g, "UpdateEndpoint", {"EndpointName": "Flip", "EndpointConfigName": cfg})
    d0 = wait_ep(gw, "Flip", ("InService",), 15, "two: Flip")
    start = "flip-a" if (d0 or {}).get("EndpointConfigName") != "flip-a" else "flip-b"
    other = "flip-b" if start == "flip-a" else "flip-a"
    for _ in range(5):
        ths = [threading.Thread(target=upd, args=(0, gw, start)),
               threading.Thread(target=upd, args=(1, gw2, other))]
        for th in ths:
            th.start()
        for th in ths:
            th.join(30)
        # Both may win when one update was deployed before the other read
        # the document; a loser is a 400 ValidationException.
        check(all(r[0] == 200 or (r[0] == 400 and r[1] == "ValidationException") for r in res),
              "two: concurrent UpdateEndpoint from two gateways: 200 or 400: %r"
              % [r[:3] for r in res])
        d = wait_ep(gw, "Flip", ("InService",), 15, "two: after the race")
        cfg = (d or {}).get("EndpointConfigName")
        variant = "Blue" if cfg == "flip-a" else "Green" if cfg == "flip-b" else None
        time.sleep(0.3)
        seen = set()
        for g in (gw, gw2):
            for _ in range(5):
                st, h, out = invoke(g.port, "Flip", sign=g if g is gw2 else None)
                seen.add((st, h.get("x-amzn-invoked-production-variant")))
        check_eq(seen, {(200, variant)}, "two: both gateways serve %s's variant" % cfg)
        start, other = other, start


def main():
    fifo_model = os.path.join(tmp, "swap.json")
    gw = AdminGateway(endpoints={"cfg-ep": {"model": KM2D_PATH}}, drain_timeout_ms=3000,
                      admin_exec_dirs=EXEC_DIRS)
    gw2 = None
    byo_kids = []
    try:
        with section("auth"):
            auth_attacks(gw)
        with section("input"):
            input_attacks(gw)
        with section("memory: ListModels"):
            list_memory(gw)
        with section("memory: variants"):
            variant_memory(gw)
        with section("UpdateEndpoint x20 under load"):
            flip_under_load(gw)
        with section("delete/update with requests in flight"):
            delete_in_flight(gw)
        with section("update during Updating, delete during Updating"):
            update_while_updating(gw)
        with section("status machine"):
            status_machine(gw)
        with section("bring your own serve program"):
            byo_kids = byo(gw)
        with section("serve program to serve program updates under load"):
            byo_flip(gw)
        with section("churn: create and delete at once"):
            churn(gw)
        with section("hole: BASH_ENV"):
            open_gw = AdminGateway(auth=False, admin_exec_dirs=EXEC_DIRS)
            try:
                bash_env_hole(gw, open_gw)
            finally:
                stop_proc(open_gw.proc, timeout=20)
        with section("a gateway joining while an endpoint is Updating"):
            def start_gw2():
                return AdminGateway(redis_url="unix://" + os.path.join(gw.data_dir, "redis.sock"),
                                    admin_exec_dirs=EXEC_DIRS,
                                    data_auth="on", data_dir=tempfile.mkdtemp(
                                        prefix="ig-adv-FAILHERE-"))
            gw2 = join_during_update(gw, start_gw2)
        with section("two gateways, one endpoint"):
            if gw2 is None:
                gw2 = start_gw2()
            two_gateways(gw, gw2)
        with section("an update that fails on one gateway of two"):
            divergence(gw, gw2)
        with section("store connections killed (CLIENT KILL)"):
            store_conns_killed(gw, gw2)
            # data_auth = on: unsigned invocations refused, signed ones served
            st, h, out = invoke(gw2.port, "Flip")
            check(st == 403, "data_auth: an unsigned InvokeEndpoint is refused 403: %d %r"
                  % (st, out[:200]))
            rt = gw2.runtime()
            r = rt.invoke_endpoint(EndpointName="Flip", ContentType="text/csv", Body=BODY)
            check(r["Body"].read().decode() in WANT.values(), "data_auth: a signed call serves")
            rt2 = gw2.runtime(secret="WRONG")
            try:
                rt2.invoke_endpoint(EndpointName="Flip", ContentType="text/csv", Body=BODY)
                check(False, "data_auth: a call signed with a wrong secret was served")
            except Exception as e:  # botocore ClientError
                check("403" in str(getattr(e, "response", {}).get("ResponseMetadata", {})
                                   .get("HTTPStatusCode")), "data_auth: wrong secret 403: %r" % e)
        with section("redis kill -9"):
            redis_kill(gw)
        with section("restart"):
            code = stop_proc(gw2.proc, timeout=20) if gw2 else 0
            check_eq(code, 0, "restart: the second gateway exits 0")
            gw2 = None
            t = time.time()
            code = gw.restart(timeout=20)
            check_eq(code, 0, "restart: SIGTERM exits 0")
            check_eq(alive_pids(byo_kids), [], "restart: the serve child is gone after the "
                     "gateway exited (no orphan, no zombie)")
            wait_ep(gw, "Flip", ("InService",), 15, "restart: Flip")
            deadline = time.time() + 15
            st = None
            while time.time() < deadline:
                st, h, out = invoke(gw.port, "Byo", body="1,2\n", accept="text/csv")
                if st == 200:
                    break
                time.sleep(0.1)
            check_eq((st, out), (200, b"6.0\n"), "restart: the byo endpoint serves again")
            st, h, out = invoke(gw.port, "Flip")
            check(st == 200 and out.decode() in WANT.values(), "restart: Flip serves again: %d"
                  % st)
            log("restart: serving again %.1f s after the SIGTERM" % (time.time() - t))
            byo_kids = [p for p, _ in procs_below(gw.proc.pid, "tests/byo/serve")]
            ok(gw, "DeleteEndpoint", {"EndpointName": "Byo"}, "byo: delete")
            wait_ep(gw, "Byo", ("gone",), 10, "byo: delete")
            deadline = time.time() + 8
            while alive_pids(byo_kids) and time.time() < deadline:
                time.sleep(0.05)
            check_eq(alive_pids(byo_kids), [], "byo: the serve child is gone after DeleteEndpoint")
        with section("config-file endpoints are not the API's"):
            refused(gw, "DescribeEndpoint", {"EndpointName": "cfg-ep"}, "ValidationException",
                    "cfg: DescribeEndpoint of a config-file endpoint: not found")
            refused(gw, "DeleteEndpoint", {"EndpointName": "CFG-EP"}, "ValidationException",
                    "cfg: DeleteEndpoint of a config-file endpoint: not found")
            refused(gw, "CreateEndpoint", {"EndpointName": "Cfg-Ep", "EndpointConfigName": "flip-a"},
                    "ValidationException", "cfg: CreateEndpoint over a config-file endpoint")
            st, h, out = invoke(gw.port, "cfg-ep")
            check_eq(st, 200, "cfg: the config-file endpoint still serves")
        # A serve program still Creating when the gateway stops: no orphan.
        ok(gw, "CreateModel", {"ModelName": "Byo-Last-m", "PrimaryContainer": {
            "Image": "file://" + BYO, "Environment": {"BYO_FAIL_PING": "1"}}}, "exit: sick model")
        config(gw, "Byo-Last-c", [("AllTraffic", "Byo-Last-m", 1.0)], timeout=60)
        ok(gw, "CreateEndpoint", {"EndpointName": "Byo-Last", "EndpointConfigName": "Byo-Last-c"},
           "exit: a serve program Creating at exit")
        with section("hole: a FIFO swapped in after CreateModel wedges the loader"):
            with open(fifo_model, "w") as f:
                json.dump(KM2D, f)
            st, et, msg, _ = model(gw, "Fifo-m", "kmeans", "file://" + fifo_model)
            check(st == 200, "fifo: CreateModel on a regular file: %d %s" % (st, msg))
            os.unlink(fifo_model)
            os.mkfifo(fifo_model)
            config(gw, "Fifo-c", [("AllTraffic", "Fifo-m", 1.0)], timeout=3)
            call(gw, "CreateEndpoint", {"EndpointName": "Fifo", "EndpointConfigName": "Fifo-c"})
            time.sleep(0.5)
            # Another, innocent endpoint: deployed within seconds regardless.
            call(gw, "CreateEndpoint", {"EndpointName": "After-Fifo",
                                        "EndpointConfigName": "flip-a"})
            d = wait_ep(gw, "After-Fifo", ("InService", "Failed"), 5, "fifo: the next endpoint")
            check_eq((d or {}).get("EndpointStatus"), "InService",
                     "fifo: an endpoint created after one whose model data is a FIFO deploys "
                     "(the loader thread is blocked in open() of the FIFO)")
            d = describe(gw, "Fifo")
            log("fifo: endpoint Fifo is %r" % ((d or {}).get("EndpointStatus"),))
    finally:
        if gw2 is not None:
            stop_proc(gw2.proc, timeout=20)
        # SIGTERM: the gateway must exit even with the loader blocked; a
        # writer opens the FIFO after 12 s so that the test never hangs.
        def unblock():
            time.sleep(8)
            try:
                fd = os.open(fifo_model, os.O_WRONLY | os.O_NONBLOCK)
                os.write(fd, b"{}")
                os.close(fd)
            except OSError:
                pass
        if os.path.exists(fifo_model) and stat.S_ISFIFO(os.stat(fifo_model).st_mode):
            threading.Thread(target=unblock, daemon=True).start()
        t = time.time()
        pid = gw.proc.pid
        kids = procs_below(pid, "tests/byo/serve")
        log("exit: serve children at SIGTERM: %r" % kids)
        code = stop_proc(gw.proc, timeout=25)
        took = time.time() - t
        check(code == 0 and took < 6, "exit: SIGTERM -> exit 0 within 6 s: %d after %.1f s%s"
              % (code, took, " (blocked in the loader until the FIFO got a writer)"
                 if took > 7.5 else ""))
        time.sleep(0.2)
        check_eq(alive_pids([p for p, _ in kids]), [], "exit: no serve child left behind")
        try:
            with open(os.path.join(gw.data_dir, "redis.pid")) as f:
                rp = int(f.read().strip())
            left = alive_pids([rp])
            check_eq(left, [], "exit: the embedded redis-server stopped with the gateway")
            for p, _ in left:
                os.kill(p, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        tail = gw.stderr()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            check(bad not in tail, "sanitizer report in the gateway's stderr: %s"
                  % tail[tail.find(bad) - 200:tail.find(bad) + 3000] if bad in tail else "")
    log("done")
    finish()


if __name__ == "__main__":
    main()
