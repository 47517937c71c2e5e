"""The admin API (SageMaker's control plane, JSON 1.1; issue 17) with real
clients: Debian's aws CLI (create-model, create-endpoint-config,
create-endpoint, `wait endpoint-in-service`, describe, list with pagination,
update-endpoint, delete-*, `wait endpoint-deleted`, then predictions through
`aws sagemaker-runtime invoke-endpoint`) and boto3 (Debian's, whose botocore
1.29 model and waiters are the reference for shapes, required members and
the waiters' acceptors), plus raw signed requests for what the clients hide
(JSON numbers for timestamps, the x-amzn-ErrorType header, HTTP statuses).

Deployments: a built-in (kmeans) from a plain model.json and from a
model.tar.gz, answering byte for byte what a config-file [endpoint] of the
same model answers; an existing container (http://); a bring-your-own serve
program (file://, tests/byo/serve) started and supervised by the gateway; a
program that fails (Failed with a FailureReason). Several variants by
weight, TargetVariant, UpdateEndpoint with requests in flight (none fails),
DeleteEndpoint draining a request in flight. The service's quirks asserted
exactly: a missing resource and a duplicate create are ValidationException
with the service's wording; ARNs lower-case the name.

Then the job store: a gateway restart loses nothing (same data_dir, the
embedded redis-server); two gateways on one external Redis (created through
A, served by B within 1 s); Redis stopped (admin calls ServiceUnavailable
503, InvokeEndpoint still served, /readyz "degraded" naming the store) and
started again (all recovers). Authentication: SigV4 against the configured
key (wrong secret, unknown key, no signature, a date outside the 5-minute
window), admin_keys_file, admin_auth = off on loopback only, data_auth = on,
admin_on_main = on.

Every call is bounded (one attempt a call, timeouts), the CLI waiters match
on their first poll when the gateway deploys a built-in in well under the
CLI's start-up time; run with /usr/bin/python3 (the README's set-up)."""

import ctypes
import datetime
import http.client
import json
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
import traceback

import boto3
import botocore.exceptions

from iglib import (ACCOUNT, BIN, DEMO_MODEL, ROLE_ARN, ROOT, AdminGateway, FakeContainer,
                   RedisServer, admin_request, check, check_eq, csv_body, digits_rows,
                   expected_body, finish, load_model, sm_arn)

T0 = time.time()
tmp = tempfile.mkdtemp(prefix="ig-admin-test-")
KM2D_PATH = os.path.join(ROOT, "tests", "data", "kmeans-2d.json")
KM2D = load_model(KM2D_PATH)
# A second 2-feature model whose answers differ, so a response tells which
# variant's model made it.
GREEN = {"algorithm": "kmeans", "feature_dim": 2, "centroids": [[10.0, 10.0], [-10.0, -10.0]]}
GREEN_PATH = os.path.join(tmp, "green.json")
with open(GREEN_PATH, "w") as f:
    json.dump(GREEN, f)
# model.tar.gz holding model.json (the SageMaker artifact layout).
KM2D_TGZ = os.path.join(tmp, "model.tar.gz")
with tarfile.open(KM2D_TGZ, "w:gz") as t:
    t.add(KM2D_PATH, arcname="model.json")
ROWS = [[1.0, 1.0], [3.5, 0.2], [0.1, 2.9], [-1.0, 0.5]]
BODY = csv_body(ROWS)
bpath = os.path.join(tmp, "rows.csv")
with open(bpath, "w") as f:
    f.write(BODY)
BYO = os.path.join(ROOT, "tests", "byo", "serve")
# A serve program that exits at once, in a directory of its own; the
# gateway runs file:// images from admin_exec_dirs only.
EXEC_DIR = os.path.join(tmp, "exec")
os.makedirs(EXEC_DIR)
FAIL_SERVE = os.path.join(EXEC_DIR, "fail-serve")
with open(FAIL_SERVE, "w") as f:
    f.write("#!/bin/sh\necho 'fail-serve: exiting 1' >&2\nexit 1\n")
os.chmod(FAIL_SERVE, 0o755)
EP_STATUSES = {"OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack",
               "InService", "Deleting", "Failed", "UpdateRollbackFailed"}


def xgb_predict(path, rows):
    """XGBoost's own predictions (libxgboost's C API: a float32 DMatrix, as
    tests/data/xgb-gen.c computes them), the reference for the xgboost
    built-in."""
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
        return [out[i] for i in range(n.value)]
    finally:
        if bst:
            lib.XGBoosterFree(bst)
        if dm:
            lib.XGDMatrixFree(dm)


def log(msg):
    print("[%5.1f s] %s" % (time.time() - T0, msg), flush=True)


class section:
    """Runs a block; an exception in it (a client error the test did not
    expect, a timeout) is one failure naming the section, and the next
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


def client_error(fn, **kw):
    """Call a boto3 method; -> (code, message, HTTP status) of the
    ClientError it raised, or None when it succeeded."""
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return (err.get("Code"), err.get("Message"),
                e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    return None


def expect_error(what, fn, code, message=None, status=400, **kw):
    got = client_error(fn, **kw)
    if got is None:
        return check(False, "%s: succeeded, expected %s" % (what, code))
    want = (code, message if message is not None else got[1], status if status else got[2])
    return check_eq(got, want, what)


def invoke(port, endpoint, body=BODY, ctype="text/csv", accept=None, variant=None, conn=None,
           timeout=30):
    """POST /endpoints/<endpoint>/invocations; -> (status, headers, body text)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = {"Content-Type": ctype}
    if accept:
        hdrs["Accept"] = accept
    if variant:
        hdrs["X-Amzn-SageMaker-Target-Variant"] = variant
    try:
        c.request("POST", "/endpoints/%s/invocations" % endpoint, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read().decode("utf-8", "replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if conn is None:
            c.close()


def not_found(name):
    return {"message": "Endpoint %s of account %s not found." % (name, ACCOUNT)}


def as_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def miss(kind, name):
    word = {"model": "model", "endpoint-config": "endpoint configuration",
            "endpoint": "endpoint"}[kind]
    return 'Could not find %s "%s".' % (word, sm_arn(kind, name))


def dup(kind, name):
    word = {"model": "model", "endpoint-config": "endpoint configuration",
            "endpoint": "endpoint"}[kind]
    return 'Cannot create already existing %s "%s".' % (word, sm_arn(kind, name))


def wait_status(sm, name, want, timeout=20, what=""):
    """Poll DescribeEndpoint every 50 ms until EndpointStatus is in <want>;
    -> the last description (or the error)."""
    deadline = time.time() + timeout
    d = None
    while time.time() < deadline:
        try:
            d = sm.describe_endpoint(EndpointName=name)
            if d["EndpointStatus"] in want:
                return d
        except botocore.exceptions.ClientError as e:
            d = e.response.get("Error")
            if "error" in want:
                return d
        time.sleep(0.05)
    check(False, "%s: endpoint %s not %s within %d s; last: %r"
          % (what, name, "/".join(sorted(want)), timeout, d))
    return d


def wait_in_service(sm, name, what=""):
    """boto3's own waiter (Debian's waiters-2.json), polling every 0.2 s."""
    try:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
        return check(True, "")
    except botocore.exceptions.WaiterError as e:
        return check(False, "%s: waiter endpoint_in_service on %s: %s; last response %r"
                     % (what, name, e, getattr(e, "last_response", None)))


def deploy(sm, name, image, data_url=None, env=None, variant="AllTraffic", what=""):
    """CreateModel NAME-m, CreateEndpointConfig NAME-c, CreateEndpoint NAME
    with boto3; -> DescribeEndpoint once the waiter saw InService (or
    failure, reported)."""
    pc = {"Image": image}
    if data_url:
        pc["ModelDataUrl"] = data_url
    if env:
        pc["Environment"] = env
    sm.create_model(ModelName=name + "-m", ExecutionRoleArn=ROLE_ARN, PrimaryContainer=pc)
    sm.create_endpoint_config(EndpointConfigName=name + "-c", ProductionVariants=[
        {"VariantName": variant, "ModelName": name + "-m", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name + "-c")
    wait_in_service(sm, name, what or name)
    return sm.describe_endpoint(EndpointName=name)


def undeploy(sm, name):
    for fn, kw in ((sm.delete_endpoint, {"EndpointName": name}),
                   (sm.delete_endpoint_config, {"EndpointConfigName": name + "-c"}),
                   (sm.delete_model, {"ModelName": name + "-m"})):
        err = client_error(fn, **kw)
        check(err is None, "cleanup %s: %r" % (fn.__name__, err))


def newest_first(what, items, key, created):
    """<items> (summaries) are in CreationTime Descending order: times never
    increase, and of two items with different times the one created later
    (by its index in <created>) comes first. Equal times (a store keeping
    whole seconds) may come in either order."""
    ts = [i["CreationTime"] for i in items]
    ok = ts == sorted(ts, reverse=True)
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if ts[a] != ts[b] and created.index(items[a][key]) < created.index(items[b][key]):
                ok = False
    return check(ok, "%s: newest first: %r" % (what, [(i[key], str(i["CreationTime"]))
                                                       for i in items]))


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def cli_json(what, p):
    if not check(p.returncode == 0, "%s: aws exited %d: %s" % (what, p.returncode,
                                                               p.stderr.strip()[-1500:])):
        return {}
    try:
        return json.loads(p.stdout) if p.stdout.strip() else {}
    except ValueError:
        check(False, "%s: aws printed no JSON: %r" % (what, p.stdout[:500]))
        return {}


def cli_error(what, p, op, code, message):
    """The CLI's exit status (254: the service answered an error) and its
    stderr line (with one attempt a call, the CLI adds "(reached max retries:
    0)" after the operation's name: left out here)."""
    err = re.sub(r" \(reached max retries: \d+\)", "", p.stderr.strip())
    check_eq((p.returncode, err),
             (254, "An error occurred (%s) when calling the %s operation: %s" % (code, op, message)),
             what)


def byo_children(pid):
    """Pids of the processes running tests/byo/serve below <pid> (children,
    grandchildren...)."""
    parent, cmds = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmds[int(d)] = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out = []
    for p, cmd in cmds.items():
        if "tests/byo/serve" not in cmd:
            continue
        q, hops = parent.get(p), 0
        while q and q != pid and hops < 16:
            q, hops = parent.get(q), hops + 1
        if q == pid:
            out.append(p)
    return sorted(out)


km_expected = expected_body(KM2D, ROWS)
km_expected_csv = expected_body(KM2D, ROWS, "text/csv")
green_expected = expected_body(GREEN, ROWS)
demo = load_model(DEMO_MODEL)
digits5 = digits_rows(5)

# ============================================================================
# One gateway, embedded redis-server in its data_dir, SigV4 on the admin API,
# and a config-file endpoint of the same model for byte comparison.
# ============================================================================
XGB_BIN = os.path.join(ROOT, "tests", "data", "xgb-binary.model")
XGB_JSON = os.path.join(ROOT, "tests", "data", "xgb-regression.json")
gw = AdminGateway({"cfg-km2d": {"model": KM2D_PATH}, "cfg-xgb": {"model": XGB_BIN}},
                  admin_exec_dirs="%s:%s" % (os.path.dirname(BYO), EXEC_DIR))
sm = gw.sagemaker()
port, aport = gw.port, gw.admin_port
try:
    with section("protocol: raw JSON 1.1 calls"):
        st, h, raw, js = gw.call("ListEndpoints", {})
        check_eq((st, h.get("content-type"), sorted(js) if isinstance(js, dict) else js),
                 (200, "application/x-amz-json-1.1", ["Endpoints"]),
                 "ListEndpoints on an empty store: 200, JSON 1.1, {Endpoints: []}")
        check_eq(js and js.get("Endpoints"), [], "no endpoints yet")
        check(bool(h.get("x-amzn-requestid")), "x-amzn-RequestId on a success: %r" % h)

        st, h, raw, js = gw.call("FrobnicateEndpoint", {})
        check_eq((st, (js or {}).get("__type"), h.get("x-amzn-errortype", "").split(":")[0]),
                 (400, "UnknownOperationException", "UnknownOperationException"),
                 "unknown X-Amz-Target operation: %r" % raw[:300])
        st, h, raw, js = gw.call(None, {}, target="Frobnicator_20170724.ListEndpoints")
        check_eq((st, (js or {}).get("__type")), (400, "UnknownOperationException"),
                 "X-Amz-Target with another service's prefix: %r" % raw[:300])
        st, h, raw, js = gw.call("DescribeEndpoint", '{"EndpointName": "x"')
        check_eq((st, (js or {}).get("__type"), h.get("x-amzn-errortype", "").split(":")[0]),
                 (400, "SerializationException", "SerializationException"),
                 "malformed JSON: %r" % raw[:300])
        st, h, raw, js = gw.call("DescribeEndpoint", '["EndpointName"]')
        check_eq((st, (js or {}).get("__type")), (400, "SerializationException"),
                 "a JSON array instead of an object: %r" % raw[:300])

        st, h, raw, js = gw.call("DescribeEndpoint", {"EndpointName": "Missing-EP"})
        check_eq((st, h.get("x-amzn-errortype", "").split(":")[0], js),
                 (400, "ValidationException",
                  {"__type": "ValidationException", "message": miss("endpoint", "Missing-EP")}),
                 "DescribeEndpoint, missing: 400, header and body")
        check_eq(h.get("content-type"), "application/x-amz-json-1.1", "error Content-Type")
        st, h, raw, js = gw.call("DescribeModel", {"ModelName": "Missing-Model"})
        check_eq((st, js), (400, {"__type": "ValidationException",
                                  "message": miss("model", "Missing-Model")}),
                 "DescribeModel, missing")
        st, h, raw, js = gw.call("DescribeEndpointConfig", {"EndpointConfigName": "Missing-Cfg"})
        check_eq((st, js), (400, {"__type": "ValidationException",
                                  "message": miss("endpoint-config", "Missing-Cfg")}),
                 "DescribeEndpointConfig, missing")
        st, h, raw, js = gw.call("DescribeEndpoint", {})
        check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                 "DescribeEndpoint without EndpointName: %r" % raw[:300])
        st, h, raw, js = gw.call("CreateEndpoint", {"EndpointName": "x" * 64,
                                                    "EndpointConfigName": "c"})
        check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                 "CreateEndpoint with a 64-character name: %r" % raw[:300])
        st, h, raw, js = gw.call("CreateEndpoint", {"EndpointName": "bad_name",
                                                    "EndpointConfigName": "c"})
        check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                 "CreateEndpoint with '_' in the name: %r" % raw[:300])
        for mr in (0, 101):
            st, h, raw, js = gw.call("ListEndpoints", {"MaxResults": mr})
            check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                     "ListEndpoints MaxResults %d: %r" % (mr, raw[:300]))
        st, h, raw, js = gw.call("ListEndpoints", {"SortBy": "Colour"})
        check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                 "ListEndpoints SortBy Colour: %r" % raw[:300])
        st, h, raw, js = gw.call("ListModels", {"NextToken": "not-a-token"})
        check_eq((st, (js or {}).get("__type")), (400, "ValidationException"),
                 "ListModels with a NextToken it never gave: %r" % raw[:300])

    with section("authentication"):
        st, h, raw, js = gw.call("ListEndpoints", {}, sign=False)
        check_eq((st in (400, 403), (js or {}).get("__type"),
                  h.get("x-amzn-errortype", "").split(":")[0]),
                 (True, "MissingAuthenticationTokenException",
                  "MissingAuthenticationTokenException"),
                 "unsigned request: %d %r" % (st, raw[:300]))
        r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST",
                            "-H", "Content-Type: application/x-amz-json-1.1",
                            "-H", "X-Amz-Target: SageMaker.ListEndpoints", "--data-binary", "{}",
                            gw.admin_url + "/"], capture_output=True, text=True, timeout=20)
        body, _, code = r.stdout.rpartition("\n")
        try:
            t = json.loads(body).get("__type")
        except ValueError:
            t = body[:200]
        check_eq((code in ("400", "403"), t), (True, "MissingAuthenticationTokenException"),
                 "unsigned curl: %s %s" % (code, body[:300]))
        expect_error("boto3 with a wrong secret", gw.sagemaker(secret="WRONG").list_endpoints,
                     "InvalidSignatureException", status=None)
        got = client_error(gw.sagemaker(secret="WRONG").list_endpoints)
        check(got is not None and got[2] in (400, 403),
              "wrong secret: a 400 or 403, got %r" % (got,))
        expect_error("boto3 with an unknown access key",
                     gw.sagemaker(key="AKIDUNKNOWN", secret="WRONG").list_endpoints,
                     "UnrecognizedClientException", status=None)
        now = datetime.datetime.now(datetime.timezone.utc)
        st, h, raw, js = gw.call("ListEndpoints", {}, amz_date=now - datetime.timedelta(minutes=10))
        check_eq((st in (400, 403), (js or {}).get("__type"),
                  str((js or {}).get("message", (js or {}).get("Message")))[:17]),
                 (True, "InvalidSignatureException", "Signature expired"),
                 "X-Amz-Date 10 minutes old: %r" % raw[:300])
        st, h, raw, js = gw.call("ListEndpoints", {}, amz_date=now + datetime.timedelta(minutes=10))
        check_eq((js or {}).get("__type"), "InvalidSignatureException",
                 "X-Amz-Date 10 minutes ahead: %r" % raw[:300])
        st, h, raw, js = gw.call("ListEndpoints", {}, amz_date=now - datetime.timedelta(minutes=4))
        check_eq(st, 200, "X-Amz-Date 4 minutes old (inside the 5-minute window): %r" % raw[:300])
        # The data plane does not check signatures here (data_auth = off).
        st, _, out = invoke(port, "cfg-km2d")
        check_eq((st, out), (200, km_expected), "config-file endpoint, unsigned, data_auth off")

    with section("boto3: model, config, endpoint from a plain model.json"):
        r = sm.create_model(ModelName="Kmeans-2D", ExecutionRoleArn=ROLE_ARN,
                            PrimaryContainer={"Image": "kmeans",
                                              "ModelDataUrl": "file://" + KM2D_PATH})
        check_eq(r["ModelArn"], "arn:aws:sagemaker:us-east-1:000000000000:model/kmeans-2d",
                 "CreateModel ModelArn, the name lower-cased")
        expect_error("CreateModel twice", sm.create_model, "ValidationException",
                     dup("model", "Kmeans-2D"), ModelName="Kmeans-2D", ExecutionRoleArn=ROLE_ARN,
                     PrimaryContainer={"Image": "kmeans", "ModelDataUrl": "file://" + KM2D_PATH})
        expect_error("CreateModel, the same name in another case", sm.create_model,
                     "ValidationException", dup("model", "KMEANS-2d"), ModelName="KMEANS-2d",
                     ExecutionRoleArn=ROLE_ARN,
                     PrimaryContainer={"Image": "kmeans", "ModelDataUrl": "file://" + KM2D_PATH})
        d = sm.describe_model(ModelName="Kmeans-2D")
        check_eq((d["ModelName"], d["ModelArn"], d["PrimaryContainer"].get("Image"),
                  d["PrimaryContainer"].get("ModelDataUrl"), d.get("ExecutionRoleArn")),
                 ("Kmeans-2D", sm_arn("model", "Kmeans-2D"), "kmeans", "file://" + KM2D_PATH,
                  ROLE_ARN), "DescribeModel keeps the name's case and echoes the container")
        st, h, raw, js = gw.call("DescribeModel", {"ModelName": "Kmeans-2D"})
        ct = (js or {}).get("CreationTime")
        check(is_number(ct) and abs(ct - time.time()) < 120,
              "DescribeModel CreationTime is a JSON number of epoch seconds: %r" % (ct,))

        r = sm.create_endpoint_config(EndpointConfigName="Cfg-A", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "Kmeans-2D", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
        check_eq(r["EndpointConfigArn"], sm_arn("endpoint-config", "Cfg-A"),
                 "CreateEndpointConfig EndpointConfigArn")
        expect_error("CreateEndpointConfig twice", sm.create_endpoint_config,
                     "ValidationException", dup("endpoint-config", "Cfg-A"),
                     EndpointConfigName="Cfg-A", ProductionVariants=[
                         {"VariantName": "AllTraffic", "ModelName": "Kmeans-2D",
                          "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
        d = sm.describe_endpoint_config(EndpointConfigName="Cfg-A")
        pv = d["ProductionVariants"]
        check_eq((d["EndpointConfigName"], d["EndpointConfigArn"], len(pv),
                  pv and pv[0].get("VariantName"), pv and pv[0].get("ModelName"),
                  pv and pv[0].get("InitialVariantWeight")),
                 ("Cfg-A", sm_arn("endpoint-config", "Cfg-A"), 1, "AllTraffic", "Kmeans-2D", 1.0),
                 "DescribeEndpointConfig")
        expect_error("CreateEndpointConfig naming a missing model", sm.create_endpoint_config,
                     "ValidationException", miss("model", "No-Such-Model"),
                     EndpointConfigName="Cfg-Bad", ProductionVariants=[
                         {"VariantName": "AllTraffic", "ModelName": "No-Such-Model",
                          "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])

        t_create = time.time()
        r = sm.create_endpoint(EndpointName="Ep-One", EndpointConfigName="Cfg-A")
        check_eq(r["EndpointArn"], sm_arn("endpoint", "Ep-One"), "CreateEndpoint EndpointArn")
        d = sm.describe_endpoint(EndpointName="Ep-One")
        check(d["EndpointStatus"] in ("Creating", "InService"),
              "right after CreateEndpoint: Creating or InService, got %s" % d["EndpointStatus"])
        expect_error("CreateEndpoint twice", sm.create_endpoint, "ValidationException",
                     dup("endpoint", "Ep-One"), EndpointName="Ep-One", EndpointConfigName="Cfg-A")
        expect_error("CreateEndpoint naming a missing config", sm.create_endpoint,
                     "ValidationException", miss("endpoint-config", "No-Such-Cfg"),
                     EndpointName="Ep-Nocfg", EndpointConfigName="No-Such-Cfg")
        err = client_error(sm.create_endpoint, EndpointName="cfg-km2d",
                           EndpointConfigName="Cfg-A")
        check(err is not None and err[0] == "ValidationException",
              "CreateEndpoint with the name of a config-file [endpoint]: refused: %r" % (err,))
        wait_in_service(sm, "Ep-One", "Ep-One")
        log("Ep-One InService %.2f s after CreateEndpoint" % (time.time() - t_create))
        d = sm.describe_endpoint(EndpointName="Ep-One")
        pv = d.get("ProductionVariants") or []
        check_eq((d["EndpointName"], d["EndpointArn"], d["EndpointStatus"],
                  d.get("EndpointConfigName"), [v.get("VariantName") for v in pv],
                  "FailureReason" in d),
                 ("Ep-One", sm_arn("endpoint", "Ep-One"), "InService", "Cfg-A", ["AllTraffic"],
                  False), "DescribeEndpoint InService")
        check(d["CreationTime"] <= d["LastModifiedTime"],
              "CreationTime <= LastModifiedTime: %r" % d)
        st, h, raw, js = gw.call("DescribeEndpoint", {"EndpointName": "Ep-One"})
        check(all(is_number((js or {}).get(k)) for k in ("CreationTime", "LastModifiedTime")),
              "DescribeEndpoint timestamps are JSON numbers: %r" % raw[:400])
        check_eq(sorted(k for k in ("EndpointName", "EndpointArn", "EndpointStatus",
                                    "CreationTime", "LastModifiedTime") if k in (js or {})),
                 ["CreationTime", "EndpointArn", "EndpointName", "EndpointStatus",
                  "LastModifiedTime"], "DescribeEndpoint's required members")

        # Predictions: the same bytes as the config-file endpoint of the model.
        for acc in (None, "text/csv", "application/jsonlines"):
            a = invoke(port, "Ep-One", accept=acc)
            b = invoke(port, "cfg-km2d", accept=acc)
            check_eq((a[0], a[2]), (b[0], b[2]), "Ep-One vs cfg-km2d, Accept %s" % acc)
        a = invoke(port, "Ep-One")
        check_eq((a[0], a[2], a[1].get("x-amzn-invoked-production-variant")),
                 (200, km_expected, "AllTraffic"), "Ep-One predictions (the model's math)")
        # (The wording is not asserted: config-file endpoints say "Variant X not
        # found for endpoint E.", the variants' router "The variant X does not
        # exist for endpoint E of account A.": one of the two will go.)
        st, h, out = invoke(port, "Ep-One", variant="Nope")
        msg = str(as_json(out).get("message") if isinstance(as_json(out), dict) else out)
        check_eq((st, h.get("x-amzn-errortype"), "Nope" in msg and "Ep-One" in msg),
                 (400, "ValidationError", True),
                 "Ep-One, TargetVariant it does not have: %r" % out)
        rt = gw.runtime()
        r = rt.invoke_endpoint(EndpointName="Ep-One", ContentType="text/csv", Accept="text/csv",
                               Body=BODY)
        check_eq((r["Body"].read().decode(), r.get("InvokedProductionVariant")),
                 (km_expected_csv, "AllTraffic"), "boto3 sagemaker-runtime on Ep-One")

    with section("boto3: a model.tar.gz holding model.json"):
        d = deploy(sm, "Ep-Tgz", "kmeans", "file://" + KM2D_TGZ)
        check_eq(d["EndpointStatus"], "InService", "Ep-Tgz InService")
        a = invoke(port, "Ep-Tgz", accept="text/csv")
        b = invoke(port, "cfg-km2d", accept="text/csv")
        check_eq((a[0], a[2]), (b[0], b[2]), "Ep-Tgz (model.tar.gz) vs cfg-km2d")
        # The SageMaker image URI of the built-in names the same algorithm.
        d = deploy(sm, "Ep-Uri", "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1",
                   "file://" + KM2D_PATH)
        check_eq(d["EndpointStatus"], "InService", "Ep-Uri (kmeans image URI) InService")
        a = invoke(port, "Ep-Uri")
        check_eq((a[0], a[2]), (200, km_expected), "Ep-Uri predictions")

    with section("boto3: the pca and linear-learner built-ins"):
        PCA = {"algorithm": "pca", "feature_dim": 2, "mean": [1.0, 2.0],
               "components": [[0.5, -0.25], [1.0, 0.0], [0.0, -1.0]]}
        LLB = {"algorithm": "linear-learner", "feature_dim": 2,
               "predictor_type": "binary_classifier", "weights": [0.5, -1.5], "bias": -0.1}
        for name, image, m in (("Ep-Pca", "pca", PCA), ("Ep-Ll", "linear-learner", LLB)):
            path = os.path.join(tmp, name + ".json")
            with open(path, "w") as f:
                json.dump(m, f)
            d = deploy(sm, name, image, "file://" + path)
            check_eq(d["EndpointStatus"], "InService", name + " InService")
            for acc in ("application/json", "text/csv"):
                a = invoke(port, name, accept=acc)
                check_eq((a[0], a[2]), (200, expected_body(m, ROWS, acc)),
                         "%s predictions, Accept %s" % (name, acc))
            undeploy(sm, name)

    with section("boto3: the xgboost built-in"):
        # model.tar.gz as SageMaker's XGBoost training writes it (xgboost-model,
        # XGBoost's binary format); and the image URI with the JSON file itself.
        xtgz = os.path.join(tmp, "xgb-model.tar.gz")
        with tarfile.open(xtgz, "w:gz") as t:
            t.add(XGB_BIN, arcname="xgboost-model")
        xrows = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [-2.5, 4.0, 1.25]]
        d = deploy(sm, "Ep-Xgb", "xgboost", "file://" + xtgz)
        check_eq(d["EndpointStatus"], "InService", "Ep-Xgb InService")
        for acc in ("text/csv", "application/json"):
            a = invoke(port, "Ep-Xgb", body=csv_body(xrows), accept=acc)
            b = invoke(port, "cfg-xgb", body=csv_body(xrows), accept=acc)
            check_eq((a[0], a[2]), (b[0], b[2]), "Ep-Xgb vs cfg-xgb, Accept %s" % acc)
        a = invoke(port, "Ep-Xgb", body=csv_body(xrows), accept="text/csv")
        check_eq([float(v) for v in a[2].split()], xgb_predict(XGB_BIN, xrows),
                 "Ep-Xgb: libxgboost's predictions")
        d = deploy(sm, "Ep-Xgb2", "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                   "sagemaker-xgboost:1.7-1", "file://" + XGB_JSON)
        check_eq(d["EndpointStatus"], "InService", "Ep-Xgb2 (image URI, JSON model) InService")
        a = invoke(port, "Ep-Xgb2", body=csv_body(xrows), accept="text/csv")
        check_eq((a[0], [float(v) for v in a[2].split()] if a[0] == 200 else a[2]),
                 (200, xgb_predict(XGB_JSON, xrows)), "Ep-Xgb2: libxgboost's predictions")
        undeploy(sm, "Ep-Xgb")
        undeploy(sm, "Ep-Xgb2")

    with section("validation: s3://, missing and deleted resources"):
        err = client_error(sm.create_model, ModelName="S3-Model", ExecutionRoleArn=ROLE_ARN,
                           PrimaryContainer={"Image": "kmeans",
                                             "ModelDataUrl": "s3://bucket/model.tar.gz"})
        check(err is not None and err[0] == "ValidationException" and err[2] == 400
              and "s3" in (err[1] or "").lower(),
              "an s3:// ModelDataUrl: a ValidationException naming s3: %r" % (err,))
        err = client_error(sm.create_model, ModelName="No-File", ExecutionRoleArn=ROLE_ARN,
                           PrimaryContainer={"Image": "kmeans", "ModelDataUrl":
                                             "file://" + os.path.join(tmp, "no-such.json")})
        check(err is not None and err[0] == "ValidationException" and err[2] == 400,
              "a ModelDataUrl file that does not exist: refused at CreateModel: %r" % (err,))
        err = client_error(sm.create_model, ModelName="Not-Exec-Dir", ExecutionRoleArn=ROLE_ARN,
                           PrimaryContainer={"Image": "file:///bin/true"})
        check(err is not None and err[0] == "ValidationException" and err[2] == 400,
              "a file:// image outside admin_exec_dirs: refused at CreateModel: %r" % (err,))
        expect_error("DeleteModel, missing", sm.delete_model, "ValidationException",
                     miss("model", "Gone-Model"), ModelName="Gone-Model")
        expect_error("DeleteEndpointConfig, missing", sm.delete_endpoint_config,
                     "ValidationException", miss("endpoint-config", "Gone-Cfg"),
                     EndpointConfigName="Gone-Cfg")
        expect_error("DeleteEndpoint, missing", sm.delete_endpoint, "ValidationException",
                     miss("endpoint", "Gone-Ep"), EndpointName="Gone-Ep")
        expect_error("UpdateEndpoint, missing endpoint", sm.update_endpoint,
                     "ValidationException", miss("endpoint", "Gone-Ep"),
                     EndpointName="Gone-Ep", EndpointConfigName="Cfg-A")
        expect_error("DescribeEndpoint, missing (boto3)", sm.describe_endpoint,
                     "ValidationException", miss("endpoint", "UPPER-Case-Ep"),
                     EndpointName="UPPER-Case-Ep")

    with section("a deployment that fails: Failed with a FailureReason"):
        sm.create_model(ModelName="Bad-Serve-m", ExecutionRoleArn=ROLE_ARN,
                        PrimaryContainer={"Image": "file://" + FAIL_SERVE})
        sm.create_endpoint_config(EndpointConfigName="Bad-Serve-c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "Bad-Serve-m", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName="Bad-Serve", EndpointConfigName="Bad-Serve-c")
        t = time.time()
        try:
            sm.get_waiter("endpoint_in_service").wait(
                EndpointName="Bad-Serve", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
            check(False, "waiter endpoint_in_service succeeded on a serve program that exits 1")
        except botocore.exceptions.WaiterError as e:
            check("terminal failure state" in str(e),
                  "the waiter stops on Failed (a terminal failure): %s" % e)
        log("Bad-Serve waiter ended after %.2f s" % (time.time() - t))
        d = sm.describe_endpoint(EndpointName="Bad-Serve")
        check_eq(d["EndpointStatus"], "Failed", "Bad-Serve EndpointStatus")
        fr = d.get("FailureReason") or ""
        check(0 < len(fr) <= 1024, "FailureReason says why: %r" % fr)
        log("FailureReason: %r" % fr)
        st, _, out = invoke(port, "Bad-Serve")
        check(st >= 400, "a Failed endpoint does not serve: %d %s" % (st, out[:200]))
        p = gw.aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "Bad-Serve")
        check(p.returncode == 255 and "terminal failure state" in p.stderr,
              "aws sagemaker wait endpoint-in-service on a Failed endpoint: %d %s"
              % (p.returncode, p.stderr.strip()[-300:]))
        # A model file that does not load: Failed, the reason naming the variant.
        junk = os.path.join(tmp, "junk.json")
        with open(junk, "w") as f:
            f.write('{"algorithm": "kmeans", "centroids": [[1, 2], [3]]')
        err = client_error(sm.create_model, ModelName="Junk-m", ExecutionRoleArn=ROLE_ARN,
                           PrimaryContainer={"Image": "kmeans", "ModelDataUrl": "file://" + junk})
        if err is None:
            sm.create_endpoint_config(EndpointConfigName="Junk-c", ProductionVariants=[
                {"VariantName": "Only", "ModelName": "Junk-m", "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}])
            sm.create_endpoint(EndpointName="Junk", EndpointConfigName="Junk-c")
            d = wait_status(sm, "Junk", {"Failed", "InService"}, what="Junk")
            check(d.get("EndpointStatus") == "Failed" and "Only" in d.get("FailureReason", ""),
                  "a model file that does not load: Failed, naming the variant: %r"
                  % d.get("FailureReason"))
            undeploy(sm, "Junk")
        else:
            check(err[0] == "ValidationException",
                  "a model file that does not load, refused at CreateModel: %r" % (err,))
        err = client_error(sm.update_endpoint, EndpointName="Bad-Serve",
                           EndpointConfigName="Cfg-A")
        check(err is not None and err[0] == "ValidationException",
              "UpdateEndpoint of a Failed endpoint: ValidationException: %r" % (err,))
        # An update to a config that fails rolls back: InService on the old
        # config, with a FailureReason, still serving.
        sm.update_endpoint(EndpointName="Ep-Uri", EndpointConfigName="Bad-Serve-c")
        deadline = time.time() + 20
        while time.time() < deadline:
            d = sm.describe_endpoint(EndpointName="Ep-Uri")
            if d.get("FailureReason") or d["EndpointStatus"] == "Failed":
                break
            time.sleep(0.05)
        check_eq((d["EndpointStatus"], d.get("EndpointConfigName"), bool(d.get("FailureReason"))),
                 ("InService", "Ep-Uri-c", True),
                 "a failed update rolls back: %r" % d.get("FailureReason"))
        check_eq(invoke(port, "Ep-Uri")[::2], (200, km_expected), "Ep-Uri serves after the "
                 "failed update")
        sm.delete_endpoint(EndpointName="Bad-Serve")
        wait_status(sm, "Bad-Serve", {"error"}, what="Bad-Serve deleted")
        sm.delete_endpoint_config(EndpointConfigName="Bad-Serve-c")
        sm.delete_model(ModelName="Bad-Serve-m")

    with section("an existing container (http://) and DeleteEndpoint draining"):
        with FakeContainer("--latency-us", "1500000", logdir=tmp) as fc:
            d = deploy(sm, "Ep-Http", fc.url)
            check_eq(d["EndpointStatus"], "InService", "Ep-Http InService")
            box = {}

            def slow_call():
                box["r"] = invoke(port, "Ep-Http", body=csv_body(digits5), accept="text/csv")
            th = threading.Thread(target=slow_call)
            th.start()
            time.sleep(0.5)  # the call is at the container (1.5 s service time)
            sm.delete_endpoint(EndpointName="Ep-Http")
            d = sm.describe_endpoint(EndpointName="Ep-Http")
            check_eq(d["EndpointStatus"], "Deleting", "a request in flight: Deleting meanwhile")
            th.join(20)
            check_eq(box.get("r", (None, None, None))[::2],
                     (200, expected_body(demo, digits5, "text/csv")),
                     "a request in flight when DeleteEndpoint came: answered (drained)")
            wait_status(sm, "Ep-Http", {"error"}, what="Ep-Http deleted")
            st, _, out = invoke(port, "Ep-Http")
            check_eq((st, as_json(out)), (400, not_found("Ep-Http")),
                     "a deleted endpoint: the runtime's not-found answer")
            sm.delete_endpoint_config(EndpointConfigName="Ep-Http-c")
            sm.delete_model(ModelName="Ep-Http-m")

    with section("bring your own serve program (file://tests/byo/serve)"):
        if not check(os.access(BYO, os.X_OK), "tests/byo/serve exists and is executable"):
            raise RuntimeError("no tests/byo/serve yet")
        # SCALE from the environment.
        d = deploy(sm, "Byo-Env", "file://" + BYO, env={"BYO_SCALE": "3"})
        check_eq(d["EndpointStatus"], "InService", "Byo-Env InService")
        st, h, out = invoke(port, "Byo-Env", body="1,2\n3,4.5\n", accept="text/csv")
        check_eq((st, out), (200, "9.0\n22.5\n"), "Byo-Env: each row's sum times BYO_SCALE 3")
        kids = byo_children(gw.proc.pid)
        check_eq(len(kids), 1, "one serve child of the gateway: %r" % kids)
        # SCALE from $SM_MODEL_DIR/scale.txt, out of a model.tar.gz.
        sdir = os.path.join(tmp, "byo-model")
        os.makedirs(sdir, exist_ok=True)
        with open(os.path.join(sdir, "scale.txt"), "w") as f:
            f.write("2\n")
        btgz = os.path.join(tmp, "byo-model.tar.gz")
        with tarfile.open(btgz, "w:gz") as t:
            t.add(os.path.join(sdir, "scale.txt"), arcname="scale.txt")
        d = deploy(sm, "Byo-Tgz", "file://" + BYO, "file://" + btgz)
        check_eq(d["EndpointStatus"], "InService", "Byo-Tgz InService")
        st, h, out = invoke(port, "Byo-Tgz", body="1,2\n3,4.5\n", accept="text/csv")
        check_eq((st, out), (200, "6.0\n15.0\n"), "Byo-Tgz: sums times scale.txt's 2")
        undeploy(sm, "Byo-Env")
        undeploy(sm, "Byo-Tgz")
        wait_status(sm, "Byo-Tgz", {"error"}, what="Byo-Tgz deleted")
        deadline = time.time() + 10
        while byo_children(gw.proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        check_eq(byo_children(gw.proc.pid), [], "the serve children end with their endpoints")

    with section("pagination, sorting and filters"):
        names = ["pg-%02d" % i for i in range(12)]
        for n in names:
            sm.create_model(ModelName=n, ExecutionRoleArn=ROLE_ARN,
                            PrimaryContainer={"Image": "kmeans",
                                              "ModelDataUrl": "file://" + KM2D_PATH})
        r = sm.list_models(NameContains="pg-")
        ms = r["Models"]
        check_eq((len(ms), "NextToken" in r), (10, True), "ListModels: 10 by default, NextToken")
        check(all(set(m) >= {"ModelName", "ModelArn", "CreationTime"} for m in ms),
              "ModelSummary members: %r" % ms[:1])
        newest_first("ListModels default order", ms, "ModelName", names)
        r2 = sm.list_models(NameContains="pg-", NextToken=r["NextToken"])
        check_eq((len(r2["Models"]), "NextToken" in r2), (2, False), "ListModels page 2")
        got = [m["ModelName"] for m in ms + r2["Models"]]
        check_eq(sorted(got), names, "the two pages hold each model once")
        pages = list(sm.get_paginator("list_models").paginate(
            NameContains="pg-", SortBy="Name", SortOrder="Ascending",
            PaginationConfig={"PageSize": 5}))
        check_eq([[m["ModelName"] for m in p["Models"]] for p in pages],
                 [names[:5], names[5:10], names[10:]], "paginator, PageSize 5, Name Ascending")
        r = sm.list_models(NameContains="pg-1", SortBy="Name", SortOrder="Descending")
        check_eq([m["ModelName"] for m in r["Models"]], ["pg-11", "pg-10"],
                 "NameContains pg-1, Name Descending")
        for n in names:
            sm.delete_model(ModelName=n)
        check_eq(sm.list_models(NameContains="pg-")["Models"], [], "all pg- models deleted")

        r = sm.list_endpoint_configs(SortBy="Name", SortOrder="Ascending", MaxResults=100)
        cn = [c["EndpointConfigName"] for c in r["EndpointConfigs"]]
        check_eq([c for c in cn if c in ("Cfg-A", "Ep-Tgz-c", "Ep-Uri-c")],
                 ["Cfg-A", "Ep-Tgz-c", "Ep-Uri-c"], "ListEndpointConfigs by Name: %r" % cn)
        check(all(c["EndpointConfigArn"] == sm_arn("endpoint-config", c["EndpointConfigName"])
                  for c in r["EndpointConfigs"]), "EndpointConfigSummary ARNs")

        eps = []
        tok = None
        for _ in range(10):
            kw = {"MaxResults": 1, "NameContains": "Ep-"}
            if tok:
                kw["NextToken"] = tok
            r = sm.list_endpoints(**kw)
            check(len(r["Endpoints"]) <= 1, "MaxResults 1: at most one: %r" % r["Endpoints"])
            eps += r["Endpoints"]
            tok = r.get("NextToken")
            if not tok:
                break
        en = [e["EndpointName"] for e in eps]
        check_eq(sorted(en), ["Ep-One", "Ep-Tgz", "Ep-Uri"], "ListEndpoints a page at a time")
        newest_first("ListEndpoints default order", eps, "EndpointName",
                     ["Ep-One", "Ep-Tgz", "Ep-Uri"])
        check(all(set(e) >= {"EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime",
                             "EndpointStatus"} and e["EndpointStatus"] in EP_STATUSES
                  for e in eps), "EndpointSummary members: %r" % eps[:1])
        r = sm.list_endpoints(SortBy="Name", SortOrder="Ascending", NameContains="Ep-",
                              StatusEquals="InService")
        check_eq([e["EndpointName"] for e in r["Endpoints"]], ["Ep-One", "Ep-Tgz", "Ep-Uri"],
                 "ListEndpoints Name Ascending, NameContains, StatusEquals InService")
        many = ["Pg-Ep-%02d" % i for i in range(11)]
        for n in many:
            sm.create_endpoint(EndpointName=n, EndpointConfigName="Cfg-A")
        for n in many:
            wait_status(sm, n, {"InService"}, what=n)
        r = sm.list_endpoints(NameContains="pg-ep")
        check_eq((len(r["Endpoints"]), "NextToken" in r), (10, True),
                 "ListEndpoints: 10 by default (NameContains is case-insensitive)")
        newest_first("ListEndpoints of 11", r["Endpoints"], "EndpointName", many)
        r2 = sm.list_endpoints(NameContains="pg-ep", NextToken=r["NextToken"])
        check_eq(sorted(e["EndpointName"] for e in r["Endpoints"] + r2["Endpoints"]), many,
                 "ListEndpoints: the second page holds the 11th")
        for n in many:
            sm.delete_endpoint(EndpointName=n)
        for n in many:
            wait_status(sm, n, {"error"}, what=n + " deleted")
        r = sm.list_endpoints(StatusEquals="Failed")
        check_eq(r["Endpoints"], [], "ListEndpoints StatusEquals Failed: none")
        r = sm.list_endpoints(CreationTimeAfter=datetime.datetime(2100, 1, 1))
        check_eq(r["Endpoints"], [], "ListEndpoints CreationTimeAfter 2100: none")

    with section("aws CLI: the whole life of an endpoint"):
        def P(*args):
            t = time.time()
            p = gw.aws(*args)
            log("aws %s: %.1f s" % (" ".join(args[:2]), time.time() - t))
            return p
        cli_json("create-model", P("sagemaker", "create-model", "--model-name", "Cli-Blue",
                                   "--execution-role-arn", ROLE_ARN, "--primary-container",
                                   "Image=kmeans,ModelDataUrl=file://" + KM2D_PATH))
        cli_json("create-model green", P("sagemaker", "create-model", "--model-name", "Cli-Green",
                                         "--execution-role-arn", ROLE_ARN, "--primary-container",
                                         "Image=kmeans,ModelDataUrl=file://" + GREEN_PATH))
        out = cli_json("create-endpoint-config", P(
            "sagemaker", "create-endpoint-config", "--endpoint-config-name", "Cli-Cfg1",
            "--production-variants",
            "VariantName=Blue,ModelName=Cli-Blue,InitialInstanceCount=1,"
            "InstanceType=ml.m5.large,InitialVariantWeight=1"))
        check_eq(out.get("EndpointConfigArn"), sm_arn("endpoint-config", "Cli-Cfg1"),
                 "CLI create-endpoint-config ARN")
        sm.create_endpoint_config(EndpointConfigName="Cli-Cfg2", ProductionVariants=[
            {"VariantName": "Blue", "ModelName": "Cli-Blue", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 3.0},
            {"VariantName": "Green", "ModelName": "Cli-Green", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
        out = cli_json("create-endpoint", P("sagemaker", "create-endpoint", "--endpoint-name",
                                            "Cli-Ep", "--endpoint-config-name", "Cli-Cfg1"))
        check_eq(out.get("EndpointArn"), sm_arn("endpoint", "Cli-Ep"), "CLI create-endpoint")
        t = time.time()
        p = P("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "Cli-Ep")
        check_eq((p.returncode, p.stdout, p.stderr), (0, "", ""), "wait endpoint-in-service")
        log("CLI wait endpoint-in-service: %.1f s" % (time.time() - t))
        out = cli_json("describe-endpoint", P("sagemaker", "describe-endpoint",
                                              "--endpoint-name", "Cli-Ep"))
        check_eq((out.get("EndpointStatus"), out.get("EndpointConfigName"),
                  [v.get("VariantName") for v in out.get("ProductionVariants", [])]),
                 ("InService", "Cli-Cfg1", ["Blue"]), "CLI describe-endpoint")
        # Pagination through the CLI: its own page size and --max-items tokens.
        four = ["Ep-One", "Ep-Tgz", "Ep-Uri", "Cli-Ep"]  # in creation order
        out = cli_json("list-endpoints --page-size 1", P("sagemaker", "list-endpoints",
                                                         "--name-contains", "Ep",
                                                         "--page-size", "1"))
        listed = out.get("Endpoints", [])
        check_eq(sorted(e["EndpointName"] for e in listed), sorted(four),
                 "CLI list-endpoints --page-size 1: every endpoint once")
        newest_first("CLI list-endpoints", listed, "EndpointName", four)
        out = cli_json("list-endpoints --max-items 2", P("sagemaker", "list-endpoints",
                                                         "--name-contains", "Ep",
                                                         "--max-items", "2", "--page-size", "1"))
        first = [e["EndpointName"] for e in out.get("Endpoints", [])]
        check_eq((len(first), "NextToken" in out), (2, True), "CLI list-endpoints --max-items 2")
        if out.get("NextToken"):
            out = cli_json("list-endpoints --starting-token",
                           P("sagemaker", "list-endpoints", "--name-contains", "Ep",
                             "--max-items", "2", "--page-size", "1", "--starting-token",
                             out["NextToken"]))
            rest = [e["EndpointName"] for e in out.get("Endpoints", [])]
            check_eq((sorted(first + rest), "NextToken" in out), (sorted(four), False),
                     "CLI list-endpoints --starting-token: the other two, then no token")
        # Predictions through the CLI's sagemaker-runtime.
        opath = os.path.join(tmp, "cli-out.csv")
        p = gw.aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "Cli-Ep",
                   "--content-type", "text/csv", "--accept", "text/csv",
                   "--body", "fileb://" + bpath, opath, admin=False)
        meta = cli_json("invoke-endpoint", p)
        check_eq(meta.get("InvokedProductionVariant"), "Blue", "CLI invoke: variant")
        with open(opath) as f:
            check_eq(f.read(), km_expected_csv, "CLI invoke-endpoint predictions")

        # UpdateEndpoint with requests in flight: none fails; then the new
        # config's variants split traffic 3:1.
        stop = threading.Event()
        results = []

        def hammer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not stop.is_set():
                try:
                    st, h, out = invoke(port, "Cli-Ep", conn=c)
                    results.append((st, h.get("x-amzn-invoked-production-variant"), out))
                except (OSError, http.client.HTTPException) as e:
                    results.append((repr(e), None, ""))
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.close()
        ths = [threading.Thread(target=hammer) for _ in range(2)]
        for th in ths:
            th.start()
        time.sleep(0.2)
        out = cli_json("update-endpoint", P("sagemaker", "update-endpoint", "--endpoint-name",
                                            "Cli-Ep", "--endpoint-config-name", "Cli-Cfg2"))
        check_eq(out.get("EndpointArn"), sm_arn("endpoint", "Cli-Ep"), "update-endpoint ARN")
        d = sm.describe_endpoint(EndpointName="Cli-Ep")
        check(d["EndpointStatus"] in ("Updating", "InService"),
              "right after UpdateEndpoint: Updating or InService: %s" % d["EndpointStatus"])
        p = P("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "Cli-Ep")
        check_eq(p.returncode, 0, "wait endpoint-in-service after the update: %s" % p.stderr)
        time.sleep(0.3)
        stop.set()
        for th in ths:
            th.join(30)
        want_by = {"Blue": km_expected, "Green": green_expected}
        bad = [r for r in results if r[0] != 200 or r[2] != want_by.get(r[1])]
        seen = sorted({r[1] for r in results if r[0] == 200})
        log("%d calls across UpdateEndpoint" % len(results))
        check_eq((len(bad), seen), (0, ["Blue", "Green"]),
                 "%d calls across UpdateEndpoint: none failed or wrong, both configs "
                 "served; failures "
                 "e.g. %r" % (len(results), bad[:3]))
        d = sm.describe_endpoint(EndpointName="Cli-Ep")
        pv = {v["VariantName"]: v for v in d.get("ProductionVariants", [])}
        check_eq((d["EndpointStatus"], d.get("EndpointConfigName"), sorted(pv),
                  [pv.get(n, {}).get("CurrentWeight") for n in ("Blue", "Green")]),
                 ("InService", "Cli-Cfg2", ["Blue", "Green"], [3.0, 1.0]),
                 "DescribeEndpoint after the update")
        counts = {}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(400):
            st, h, out = invoke(port, "Cli-Ep", conn=c)
            v = h.get("x-amzn-invoked-production-variant")
            want = {"Blue": km_expected, "Green": green_expected}.get(v)
            if not check(st == 200 and out == want, "split call: %d %s %r" % (st, v, out[:200])):
                break
            counts[v] = counts.get(v, 0) + 1
        c.close()
        log("400 calls split %r" % counts)
        check(250 <= counts.get("Blue", 0) <= 350 and
              sum(counts.values()) - counts.get("Blue", 0) == counts.get("Green", 0),
              "weights 3:1 over 400 calls: %r" % counts)
        for v, want in (("Green", green_expected), ("Blue", km_expected)):
            hits = [invoke(port, "Cli-Ep", variant=v) for _ in range(20)]
            check_eq({(s, h.get("x-amzn-invoked-production-variant"), o) for s, h, o in hits},
                     {(200, v, want)}, "TargetVariant %s: 20 calls, all to it" % v)

        # Deletion, the waiter, then the error the CLI prints.
        p = P("sagemaker", "delete-endpoint", "--endpoint-name", "Cli-Ep")
        check_eq((p.returncode, p.stdout.strip()), (0, ""), "delete-endpoint: %s" % p.stderr)
        t = time.time()
        p = P("sagemaker", "wait", "endpoint-deleted", "--endpoint-name", "Cli-Ep")
        check_eq((p.returncode, p.stderr), (0, ""), "wait endpoint-deleted")
        log("CLI wait endpoint-deleted: %.1f s" % (time.time() - t))
        p = P("sagemaker", "describe-endpoint", "--endpoint-name", "Cli-Ep")
        cli_error("describe-endpoint after the delete", p, "DescribeEndpoint",
                  "ValidationException", miss("endpoint", "Cli-Ep"))
        st, _, out = invoke(port, "Cli-Ep")
        check_eq((st, as_json(out)), (400, not_found("Cli-Ep")), "invoke after the delete")
        for args in (("delete-endpoint-config", "--endpoint-config-name", "Cli-Cfg1"),
                     ("delete-model", "--model-name", "Cli-Blue")):
            p = P("sagemaker", *args)
            check_eq((p.returncode, p.stdout, p.stderr), (0, "", ""), "CLI " + " ".join(args))
        sm.delete_endpoint_config(EndpointConfigName="Cli-Cfg2")
        sm.delete_model(ModelName="Cli-Green")
        expect_error("DescribeModel after the CLI's delete-model", sm.describe_model,
                     "ValidationException", miss("model", "Cli-Blue"), ModelName="Cli-Blue")
        expect_error("DescribeEndpointConfig after the delete", sm.describe_endpoint_config,
                     "ValidationException", miss("endpoint-config", "Cli-Cfg1"),
                     EndpointConfigName="Cli-Cfg1")

    with section("restart: the same data_dir, nothing lost"):
        before = sorted((e["EndpointName"], e["EndpointStatus"])
                        for e in sm.list_endpoints(MaxResults=100)["Endpoints"])
        code = gw.restart()
        check_eq(code, 0, "exit status of the stop before the restart")
        t = time.time()
        deadline = t + 15
        st = None
        early = []  # what Ep-One answered before it served
        while time.time() < deadline:
            try:
                st, _, out = invoke(port, "Ep-One", timeout=5)
                if st == 200:
                    break
                early.append((st, out[:120]))
            except OSError as e:
                early.append(repr(e))
            time.sleep(0.02)
        log("Ep-One served %.2f s after the restart answered /ping; before: %d answers, e.g. %r"
            % (time.time() - t, len(early), early[:1]))
        check_eq((st, out), (200, km_expected), "Ep-One serves after the restart")
        # Once /readyz says ready, every InService endpoint serves.
        gw.restart()
        deadline = time.time() + 15
        rd = ""
        while time.time() < deadline:
            r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", gw.url + "/readyz"],
                               capture_output=True, text=True, timeout=10)
            rd = r.stdout
            if rd.endswith("\n200") and '"ready"' in rd:
                break
            time.sleep(0.02)
        got = [invoke(port, n)[::2] for n in ("Ep-One", "Ep-Uri")]
        check_eq(got, [(200, km_expected)] * 2,
                 "the first calls once /readyz says ready after a restart (%r)" % rd)
        sm = gw.sagemaker()
        after = sorted((e["EndpointName"], e["EndpointStatus"])
                       for e in sm.list_endpoints(MaxResults=100)["Endpoints"])
        check_eq(after, before, "ListEndpoints after the restart")
        check_eq(sm.describe_model(ModelName="Kmeans-2D")["ModelArn"],
                 sm_arn("model", "Kmeans-2D"), "the model after the restart")
        for n in ("Ep-Tgz", "Ep-Uri"):
            check_eq(invoke(port, n)[::2], (200, km_expected), "%s after the restart" % n)
        check_eq(invoke(port, "cfg-km2d")[::2], (200, km_expected), "cfg-km2d after the restart")
        # After the restart the store still takes changes.
        undeploy(sm, "Ep-Tgz")
        wait_status(sm, "Ep-Tgz", {"error"}, what="Ep-Tgz deleted after the restart")
finally:
    code = gw.stop()
    check(code == 0, "gateway exited %d on SIGTERM; stderr: %s" % (code, gw.stderr()[-2000:]))
    left = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if gw.data_dir.encode() in f.read():
                    left.append(pid)
        except OSError:
            pass
    check_eq(left, [], "no process of the gateway's data_dir (embedded redis-server, serve "
             "programs) left after it stopped")
    log("gateway 1 log (last 1500 bytes):\n" + gw.stderr()[-1500:])

# ============================================================================
# Two gateways on one external Redis; Redis stopped and started mid-run.
# ============================================================================
with section("two gateways, one Redis; Redis down and back"):
    with RedisServer() as redis:
        ga = AdminGateway(redis_url=redis.url)
        gb = None
        try:
            gb = AdminGateway(redis_url=redis.url)
            sa, sb = ga.sagemaker(), gb.sagemaker()
            sa.create_model(ModelName="Shared-m", ExecutionRoleArn=ROLE_ARN,
                            PrimaryContainer={"Image": "kmeans",
                                              "ModelDataUrl": "file://" + KM2D_PATH})
            sa.create_endpoint_config(EndpointConfigName="Shared-c", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "Shared-m", "InitialInstanceCount": 1,
                 "InstanceType": "ml.m5.large"}])
            sa.create_endpoint(EndpointName="Shared", EndpointConfigName="Shared-c")
            wait_status(sa, "Shared", {"InService"}, what="Shared on A")
            t = time.time()
            st = None
            while time.time() - t < 1.0:
                st, _, out = invoke(gb.port, "Shared", timeout=2)
                if st == 200:
                    break
                time.sleep(0.02)
            log("created through A: served by B %.3f s after A said InService" % (time.time() - t))
            check_eq((st, out), (200, km_expected), "B serves A's endpoint within 1 s")
            d = sb.describe_endpoint(EndpointName="Shared")
            check_eq((d["EndpointStatus"], d["EndpointArn"]), ("InService", sm_arn("endpoint", "Shared")),
                     "B describes A's endpoint")
            expect_error("B refuses a duplicate of A's endpoint", sb.create_endpoint,
                         "ValidationException", dup("endpoint", "Shared"),
                         EndpointName="Shared", EndpointConfigName="Shared-c")

            redis.stop()
            t = time.time()
            err = None
            while time.time() - t < 5:
                err = client_error(sa.describe_endpoint, EndpointName="Shared")
                if err and err[0] == "ServiceUnavailable":
                    break
                time.sleep(0.1)
            check(err is not None and err[:1] == ("ServiceUnavailable",) and err[2] == 503,
                  "Redis down: boto3 DescribeEndpoint gets ServiceUnavailable 503: %r" % (err,))
            st, h, raw, js = ga.call("ListEndpoints", {})
            check_eq((st, (js or {}).get("__type"), h.get("x-amzn-errortype", "").split(":")[0]),
                     (503, "ServiceUnavailable", "ServiceUnavailable"),
                     "Redis down: raw ListEndpoints: %r" % raw[:300])
            p = ga.aws("sagemaker", "list-endpoints")
            check(p.returncode != 0 and "ServiceUnavailable" in p.stderr,
                  "Redis down: the CLI reports ServiceUnavailable: %d %s"
                  % (p.returncode, p.stderr.strip()[-300:]))
            for g, n in ((ga, "A"), (gb, "B")):
                check_eq(invoke(g.port, "Shared")[::2], (200, km_expected),
                         "Redis down: %s still serves Shared" % n)
            rd = None
            for _ in range(50):
                r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", ga.url + "/readyz"],
                                   capture_output=True, text=True, timeout=10)
                rd = r.stdout
                if '"ready"' not in rd:
                    break
                time.sleep(0.1)
            body, _, code = (rd or "").rpartition("\n")
            try:
                ready = json.loads(body)
            except ValueError:
                ready = {}
            reason = str(ready.get("reason", "")).lower()
            check("redis" in reason or "store" in reason,
                  "Redis down: /readyz names the job store in its reason: %r" % rd)
            # docs/admin.md: 200 "degraded" (the gateway still serves: a load
            # balancer must not take it out); issue 17 asks only that /readyz
            # says so.
            check(code == "200" and ready.get("status") == "degraded",
                  "Redis down: /readyz 200 degraded (docs/admin.md): %r" % rd)

            redis.start()
            t = time.time()
            for s_, n in ((sa, "A"), (sb, "B")):
                ok = False
                while time.time() - t < 15:
                    if client_error(s_.describe_endpoint, EndpointName="Shared") is None:
                        ok = True
                        break
                    time.sleep(0.1)
                log("Redis back: %s's admin API answers again after %.2f s" % (n, time.time() - t))
                check(ok, "Redis back: %s's admin API answers within 15 s" % n)
            t = time.time()
            rd = None
            while time.time() - t < 10:
                r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", ga.url + "/readyz"],
                                   capture_output=True, text=True, timeout=10)
                rd = r.stdout
                if rd.endswith("\n200") and '"degraded"' not in rd:
                    break
                time.sleep(0.1)
            body, _, code = (rd or "").rpartition("\n")
            check_eq((code, as_json(body)), ("200", {"status": "ready"}),
                     "Redis back: /readyz 200 ready again")
            check_eq(sa.describe_endpoint(EndpointName="Shared")["EndpointStatus"], "InService",
                     "Redis back: Shared still InService")
            # A new endpoint through B after the outage, served by A.
            sb.create_endpoint(EndpointName="Shared-2", EndpointConfigName="Shared-c")
            wait_status(sb, "Shared-2", {"InService"}, what="Shared-2 on B")
            t = time.time()
            while time.time() - t < 1.0:
                st, _, out = invoke(ga.port, "Shared-2", timeout=2)
                if st == 200:
                    break
                time.sleep(0.02)
            check_eq((st, out), (200, km_expected), "A serves B's new endpoint within 1 s")
            # Deleted through B: A stops serving it.
            sb.delete_endpoint(EndpointName="Shared-2")
            wait_status(sb, "Shared-2", {"error"}, what="Shared-2 deleted on B")
            t = time.time()
            while time.time() - t < 2.0:
                st, _, out = invoke(ga.port, "Shared-2", timeout=2)
                if st != 200:
                    break
                time.sleep(0.02)
            check_eq((st, as_json(out)), (400, not_found("Shared-2")),
                     "deleted through B: A answers not found within 2 s")
        finally:
            for g, n in ((ga, "A"), (gb, "B")):
                if g is not None:
                    code = g.stop()
                    check(code == 0, "gateway %s exited %d on SIGTERM; stderr: %s"
                          % (n, code, g.stderr()[-2000:]))

# ============================================================================
# Authentication options.
# ============================================================================
with section("admin_auth = off: loopback only"):
    d = tempfile.mkdtemp(prefix="ig-admin-conf-")
    conf = os.path.join(d, "open.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\nadmin_listen = 0.0.0.0:0\nadmin_auth = off\n"
                "data_dir = %s\n" % d)
    p = subprocess.run([BIN, "--config", conf, "--check-config"], capture_output=True,
                       text=True, timeout=30, cwd=ROOT)
    check(p.returncode == 2 and "admin_auth" in p.stderr,
          "admin_auth = off on 0.0.0.0 refused (exit 2, naming admin_auth): %d %s"
          % (p.returncode, p.stderr.strip()[-400:]))
    with AdminGateway(auth=False) as g:
        st, h, raw, js = g.call("ListEndpoints", {}, sign=False)
        check_eq((st, js), (200, {"Endpoints": []}), "admin_auth = off on loopback: unsigned OK")
    keys = os.path.join(d, "keys")
    with open(keys, "w") as f:
        f.write("# test keys\nAKIDFILE1 SECRETFILE1\nAKIDFILE2 SECRETFILE2\n"
                "AKIDTOKEN SECRETTOKEN SESSIONTOKEN3\n")
    with AdminGateway(admin_keys_file=keys) as g:
        for k, sk in (("AKIDFILE2", "SECRETFILE2"), ("AKIDTEST", "SECRET")):
            err = client_error(g.sagemaker(key=k, secret=sk).list_endpoints)
            check(err is None, "admin_keys_file: key %s accepted: %r" % (k, err))
        tok = boto3.client("sagemaker", endpoint_url=g.admin_url, region_name="us-east-1",
                           aws_access_key_id="AKIDTOKEN", aws_secret_access_key="SECRETTOKEN",
                           aws_session_token="SESSIONTOKEN3")
        check_eq(client_error(tok.list_endpoints), None,
                 "admin_keys_file: a key with its session token (X-Amz-Security-Token)")
        bad = boto3.client("sagemaker", endpoint_url=g.admin_url, region_name="us-east-1",
                           aws_access_key_id="AKIDTOKEN", aws_secret_access_key="SECRETTOKEN",
                           aws_session_token="OTHERTOKEN")
        got = client_error(bad.list_endpoints)
        check(got is not None and got[0] == "UnrecognizedClientException",
              "admin_keys_file: a wrong session token: UnrecognizedClientException: %r" % (got,))
        expect_error("admin_keys_file: a file key with another's secret",
                     g.sagemaker(key="AKIDFILE1", secret="SECRETFILE2").list_endpoints,
                     "InvalidSignatureException", status=None)

with section("data_auth = on; admin_on_main = on"):
    with AdminGateway({"cfg-km2d": {"model": KM2D_PATH}}, data_auth="on",
                      admin_on_main="on") as g:
        st, h, out = invoke(g.port, "cfg-km2d")
        check_eq((st in (400, 403), h.get("x-amzn-errortype", "").split(":")[0]),
                 (True, "MissingAuthenticationTokenException"),
                 "data_auth on: an unsigned InvokeEndpoint: %d %r" % (st, out[:300]))
        r = g.runtime().invoke_endpoint(EndpointName="cfg-km2d", ContentType="text/csv",
                                        Body=BODY)
        check_eq(r["Body"].read().decode(), km_expected, "data_auth on: boto3 signed invoke")
        err = client_error(g.runtime(secret="WRONG").invoke_endpoint, EndpointName="cfg-km2d",
                           ContentType="text/csv", Body=BODY)
        check(err is not None and err[0] == "InvalidSignatureException",
              "data_auth on: wrong secret: InvalidSignatureException: %r" % (err,))
        p = g.aws("sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "cfg-km2d",
                  "--content-type", "text/csv", "--body", "fileb://" + bpath,
                  os.path.join(tmp, "auth-out.json"), admin=False)
        check_eq(p.returncode, 0, "data_auth on: the CLI's signed invoke: %s" % p.stderr)
        # The admin API on the main listener as well.
        st, h, raw, js = admin_request(g.port, "ListEndpoints", {})
        check_eq((st, js), (200, {"Endpoints": []}), "admin_on_main: ListEndpoints on the main port")
        st, h, raw, js = admin_request(g.port, "ListEndpoints", {}, sign=False)
        check_eq((js or {}).get("__type"), "MissingAuthenticationTokenException",
                 "admin_on_main: unsigned on the main port")

log("total %.1f s" % (time.time() - T0))
finish()
