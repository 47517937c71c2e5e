"""The AWS SDK for JavaScript v3 against the admin API (issue 17):
@aws-sdk/client-sagemaker (CreateModel, CreateEndpointConfig,
CreateEndpoint, DescribeX, ListX by hand and with paginateListEndpoints,
UpdateEndpoint, DeleteX; waitUntilEndpointInService and
waitUntilEndpointDeleted with short delays) beside
@aws-sdk/client-sagemaker-runtime for the predictions, on a gateway that
checks SigV4 (the JS SDK signs more headers than botocore: content-length,
amz-sdk-*, x-amz-user-agent). Errors as the SDK surfaces them: the
exception name, message and HTTP status; timestamps parsed into Dates (a
JSON number on the wire: an ISO string would not parse).

tests/js/admin_test.mjs makes the calls; this script starts the gateway,
writes the plan and checks every step's report exactly. The node run has a
deadline and every call a timeout."""

import json
import os
import shutil
import subprocess
import tempfile
import time

from iglib import (ADMIN_KEY, ADMIN_SECRET, ROLE_ARN, ROOT, AdminGateway, check, check_eq,
                   csv_body, expected_body, finish, load_model, sm_arn)

JS_DIR = os.path.join(ROOT, "tests", "js")
SCRIPT = os.path.join(JS_DIR, "admin_test.mjs")
DEADLINE_MS = 60000
tmp = tempfile.mkdtemp(prefix="ig-admin-js-")
KM2D_PATH = os.path.join(ROOT, "tests", "data", "kmeans-2d.json")
KM2D = load_model(KM2D_PATH)
GREEN = {"algorithm": "kmeans", "feature_dim": 2, "centroids": [[10.0, 10.0], [-10.0, -10.0]]}
GREEN_PATH = os.path.join(tmp, "green.json")
with open(GREEN_PATH, "w") as f:
    json.dump(GREEN, f)
ROWS = [[1.0, 1.0], [3.5, 0.2], [0.1, 2.9], [-1.0, 0.5]]
BODY = csv_body(ROWS)


def miss(word, kind, name):
    return 'Could not find %s "%s".' % (word, sm_arn(kind, name))


def err(name, message, status=400):
    return {"ok": False, "name": name, "message": message, "status": status}


now = time.time()
ok_in_service = {"ok": True, "out": "SUCCESS"}
EXPECT = [
    ("create model", {"ok": True, "out": {"arn": sm_arn("model", "Js-Blue")}}),
    ("create green model", {"ok": True, "out": {"arn": sm_arn("model", "Js-Green")}}),
    ("create model twice", err("ValidationException", 'Cannot create already existing model "%s".'
                               % sm_arn("model", "Js-Blue"))),
    ("describe model", {"ok": True, "out": {"name": "Js-Blue", "arn": sm_arn("model", "Js-Blue"),
                                            "image": "kmeans", "created": "near now"}}),
    ("create config 1", {"ok": True, "out": sm_arn("endpoint-config", "Js-Cfg1")}),
    ("create config 2", {"ok": True, "out": sm_arn("endpoint-config", "Js-Cfg2")}),
    ("describe config 2", {"ok": True, "out": {
        "name": "Js-Cfg2", "arn": sm_arn("endpoint-config", "Js-Cfg2"),
        "variants": [["Blue", "Js-Blue", 1], ["Green", "Js-Green", 1]], "created": "near now"}}),
    ("create endpoint", {"ok": True, "out": sm_arn("endpoint", "Js-Ep")}),
    ("create endpoint 2", {"ok": True, "out": sm_arn("endpoint", "Js-Ep2")}),
    ("wait in service", ok_in_service),
    ("wait in service 2", ok_in_service),
    ("describe endpoint", {"ok": True, "out": {
        "name": "Js-Ep", "arn": sm_arn("endpoint", "Js-Ep"), "status": "InService",
        "config": "Js-Cfg1", "variants": ["Blue"], "created": "near now",
        "modified": "near now"}}),
    ("invoke", {"ok": True, "out": {"body": expected_body(KM2D, ROWS, "text/csv"),
                                    "variant": "Blue"}}),
    ("paginate endpoints", {"ok": True, "out": [[["Js-Ep", "InService"]],
                                                [["Js-Ep2", "InService"]]]}),
    ("list models by hand", {"ok": True, "out": {"names": ["Js-Blue", "Js-Green"], "pages": 2}}),
    ("list configs", {"ok": True, "out": ["Js-Cfg2", "Js-Cfg1"]}),
    ("update endpoint", {"ok": True, "out": sm_arn("endpoint", "Js-Ep")}),
    ("wait in service after update", ok_in_service),
    ("describe after update", {"ok": True, "out": {"status": "InService", "config": "Js-Cfg2",
                                                   "variants": ["Blue", "Green"]}}),
    ("invoke Green", {"ok": True, "out": {"body": expected_body(GREEN, ROWS, "text/csv"),
                                          "variant": "Green"}}),
    ("invoke Blue", {"ok": True, "out": {"body": expected_body(KM2D, ROWS, "text/csv"),
                                         "variant": "Blue"}}),
    ("delete endpoint", {"ok": True, "out": "deleted"}),
    ("wait deleted", {"ok": True, "out": "SUCCESS"}),
    ("describe deleted endpoint", err("ValidationException", miss("endpoint", "endpoint", "Js-Ep"))),
    ("wait in service on a deleted endpoint", "waiter failure"),
    ("delete endpoint 2", {"ok": True, "out": "SUCCESS"}),
    ("delete configs and models", {"ok": True, "out": "deleted"}),
    ("describe deleted model", err("ValidationException", miss("model", "model", "Js-Blue"))),
    ("describe missing config", err("ValidationException",
                                    miss("endpoint configuration", "endpoint-config", "Js-Cfg2"))),
    ("wrong secret", "InvalidSignatureException"),
    ("unknown key", "UnrecognizedClientException"),
]


def near_now(v):
    return isinstance(v, (int, float)) and abs(v - now) < 300


def normalise(name, rep):
    """The fields of a step's report that its expectation names; times
    'near now' when they are epoch seconds within 5 minutes."""
    if rep is None:
        return None
    out = {"ok": rep.get("ok")}
    if rep.get("ok"):
        o = rep.get("out")
        if isinstance(o, dict):
            o = dict(o)
            for k in ("created", "modified"):
                if k in o and near_now(o[k]):
                    o[k] = "near now"
        out["out"] = o
    else:
        for k in ("name", "message", "status"):
            out[k] = rep.get(k)
    return out


if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-sagemaker")):
    check(False, "@aws-sdk/client-sagemaker is not installed in tests/js/node_modules: "
                 "run `make deps` (npm ci in tests/js)")
    finish()

with AdminGateway() as gw:
    plan = os.path.join(tmp, "plan.json")
    with open(plan, "w") as f:
        json.dump({"admin": gw.admin_url, "runtime": gw.url, "key": ADMIN_KEY,
                   "secret": ADMIN_SECRET, "role": ROLE_ARN,
                   "model_url": "file://" + KM2D_PATH, "green_url": "file://" + GREEN_PATH,
                   "body": BODY, "deadline_ms": DEADLINE_MS}, f)
    t0 = time.time()
    try:
        p = subprocess.run([shutil.which("node") or "/usr/bin/node", SCRIPT, plan], cwd=JS_DIR,
                           capture_output=True, timeout=DEADLINE_MS / 1000 + 15)
        out, errout, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, errout, rc = e.stdout or b"", e.stderr or b"", -9
    print("node ran %.1f s, exit %d" % (time.time() - t0, rc), flush=True)
    check(rc == 0, "node exit status %d; stderr: %s" % (rc, errout.decode("utf-8", "replace")[-1500:]))
    got = {}
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "step" in rec:
            got[rec["step"]] = rec
    check("done" in out.decode("utf-8", "replace"), "node ran every step")
    for name, want in EXPECT:
        rep = got.get(name)
        if not check(rep is not None, "%s: no report (node stopped before it)" % name):
            continue
        if want == "waiter failure":
            check(not rep.get("ok") and '"state":"FAILURE"' in (rep.get("message") or ""),
                  "%s: the waiter fails on ValidationException: %r" % (name, rep))
        elif isinstance(want, str):
            # Authentication errors: the name exact; 400 or 403.
            check(not rep.get("ok") and rep.get("name") == want and rep.get("status") in (400, 403),
                  "%s: %s (400 or 403): %r" % (name, want, rep))
        else:
            check_eq(normalise(name, rep), want, name)
    check(gw.alive(), "gateway alive after the JS SDK run")

finish()
