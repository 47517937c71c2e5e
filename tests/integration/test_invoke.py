"""InvokeEndpoint through every real client: curl (HTTP/1.1 and h2c prior
knowledge), nghttp, the Debian aws CLI and boto3; every prediction checked
against the model's math, in every response format."""

import json
import os
import tempfile
import threading

import boto3
import botocore.config

from iglib import (AWS, DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows,
                   expected_body, finish, load_model, run)

tmp = tempfile.mkdtemp(prefix="ig-invoke-")
PCA = {"algorithm": "pca", "feature_dim": 3, "mean": [1.0, 2.0, 3.0],
       "components": [[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]]}
LLR = {"algorithm": "linear-learner", "feature_dim": 4, "predictor_type": "regressor",
       "weights": [0.5, -1.5, 2.0, 0.25], "bias": 0.75}
LLB = {"algorithm": "linear-learner", "feature_dim": 4, "predictor_type": "binary_classifier",
       "weights": [0.5, -1.5, 2.0, 0.25], "bias": -0.1, "threshold": 0.6}
models = {}
for name, m in (("pca", PCA), ("llr", LLR), ("llb", LLB)):
    p = os.path.join(tmp, name + ".json")
    with open(p, "w") as f:
        json.dump(m, f)
    models[name] = p

demo = load_model(DEMO_MODEL)
rows5 = digits_rows(5)
body5 = csv_body(rows5)
with open(os.path.join(tmp, "rows5.csv"), "w") as f:
    f.write(body5)

ENV = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
           AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
           AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
ENV.pop("AWS_PROFILE", None)

endpoints = {"demo": {"model": DEMO_MODEL},
             "small-batches": {"model": DEMO_MODEL, "max_batch_rows": "100",
                               "max_delay_us": "1000"},
             "pca": {"model": models["pca"]},
             "llr": {"model": models["llr"], "accept": "text/csv"},
             "llb": {"model": models["llb"], "variant": "blue"}}

with Gateway(endpoints) as gw:
    url = gw.invoke_url("demo")

    # curl, HTTP/1.1, keep-alive across two requests in one call.
    r = run(["curl", "-sS", "--http1.1", "-H", "Content-Type: text/csv",
             "--data-binary", "@" + os.path.join(tmp, "rows5.csv"), url,
             "--next", "-sS", "--http1.1", "-H", "Content-Type: text/csv",
             "-H", "Accept: text/csv", "--data-binary", "@" + os.path.join(tmp, "rows5.csv"), url])
    check_eq(r.stdout.decode(), expected_body(demo, rows5) + expected_body(demo, rows5, "text/csv"),
             "curl http/1.1 json then csv")

    # curl, h2c with prior knowledge, response headers.
    r = run(["curl", "-sS", "-D", "-", "--http2-prior-knowledge", "-H", "Content-Type: text/csv",
             "-H", "Accept: application/jsonlines", "--data-binary", body5, url])
    out = r.stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    check(head.startswith("HTTP/2 200"), "curl h2c status: " + head[:40])
    check("content-type: application/jsonlines" in head.lower(), "h2 content-type")
    check("x-amzn-invoked-production-variant: alltraffic" in head.lower(), "h2 variant header")
    check("x-amzn-requestid:" in head.lower(), "h2 request id header")
    check_eq(body, expected_body(demo, rows5, "application/jsonlines"), "curl h2c jsonlines")

    # Accept with q-values: the highest q decides, not the first listed.
    r = run(["curl", "-sS", "-D", "-", "--http2-prior-knowledge", "-H", "Content-Type: text/csv",
             "-H", "Accept: application/json;q=0.2, text/csv;q=0.9, application/jsonlines;q=0.5",
             "--data-binary", body5, url])
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    check("content-type: text/csv" in head.lower(), "Accept q-values: text/csv (q=0.9) chosen")
    check_eq(body, expected_body(demo, rows5, "text/csv"), "Accept q-values: the CSV answer")

    # nghttp (h2c prior knowledge), 64 concurrent streams on one connection.
    r = run(["nghttp", "-m", "64", "-H", "content-type: text/csv", "-H", "accept: text/csv",
             "-d", os.path.join(tmp, "rows5.csv"), url])
    check_eq(r.stdout.decode(), expected_body(demo, rows5, "text/csv") * 64,
             "nghttp -m 64: every response exact")

    # The Debian aws CLI.
    outf = os.path.join(tmp, "aws-out.json")
    r = run([AWS, "sagemaker-runtime", "invoke-endpoint", "--endpoint-url", gw.url,
             "--endpoint-name", "demo", "--content-type", "text/csv",
             "--accept", "application/json", "--custom-attributes", "trace=1",
             "--body", "fileb://" + os.path.join(tmp, "rows5.csv"), outf], env=ENV)
    check_eq(r.returncode, 0, "aws cli exit status: " + r.stderr.decode()[-500:])
    meta = json.loads(r.stdout or b"{}")
    check_eq(meta.get("ContentType"), "application/json", "aws cli ContentType")
    check_eq(meta.get("InvokedProductionVariant"), "AllTraffic", "aws cli variant")
    with open(outf) as f:
        check_eq(f.read(), expected_body(demo, rows5), "aws cli body")

    # boto3, every format and algorithm.
    sm = boto3.client("sagemaker-runtime", endpoint_url=gw.url, region_name="us-east-1",
                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                      config=botocore.config.Config(retries={"max_attempts": 1}))
    res = sm.invoke_endpoint(EndpointName="demo", ContentType="text/csv", Body=body5)
    check_eq(res["Body"].read().decode(), expected_body(demo, rows5), "boto3 default accept json")
    check_eq(res["ContentType"], "application/json", "boto3 ContentType")
    check_eq(res["InvokedProductionVariant"], "AllTraffic", "boto3 variant")
    check(len(res["ResponseMetadata"]["RequestId"]) == 36, "boto3 request id is a uuid")

    # No Content-Type: the endpoint's default (text/csv) applies.
    res = sm.invoke_endpoint(EndpointName="demo", Body=body5, Accept="text/csv")
    check_eq(res["Body"].read().decode(), expected_body(demo, rows5, "text/csv"),
             "no content-type falls back to text/csv")

    # JSON request shapes.
    shapes = [json.dumps({"instances": [{"features": r} for r in rows5]}),
              json.dumps({"instances": rows5}),
              json.dumps({"instances": [{"data": {"features": {"values": r}}} for r in rows5]})]
    for i, s in enumerate(shapes):
        res = sm.invoke_endpoint(EndpointName="demo", ContentType="application/json", Body=s)
        check_eq(res["Body"].read().decode(), expected_body(demo, rows5), "json shape %d" % i)
    res = sm.invoke_endpoint(EndpointName="demo", ContentType="application/json",
                             Body=json.dumps(rows5[0]))
    check_eq(res["Body"].read().decode(), expected_body(demo, rows5[:1]), "bare array")
    jl = "".join(json.dumps({"features": r}) + "\n" for r in rows5)
    res = sm.invoke_endpoint(EndpointName="demo", ContentType="application/jsonlines",
                             Accept="application/jsonlines", Body=jl)
    check_eq(res["Body"].read().decode(), expected_body(demo, rows5, "application/jsonlines"),
             "jsonlines in and out")

    # PCA and Linear Learner.
    xs = [[1.5, -2.0, 0.25], [0.0, 0.0, 0.0], [10.0, 20.0, 30.0]]
    res = sm.invoke_endpoint(EndpointName="pca", ContentType="text/csv", Body=csv_body(xs))
    check_eq(res["Body"].read().decode(), expected_body(PCA, xs), "pca json")
    x4 = [[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0], [0.1, 0.2, 0.3, 0.4]]
    res = sm.invoke_endpoint(EndpointName="llr", ContentType="text/csv", Body=csv_body(x4))
    check_eq(res["Body"].read().decode(), expected_body(LLR, x4, "text/csv"),
             "linear learner regressor, endpoint default accept csv")
    res = sm.invoke_endpoint(EndpointName="llb", ContentType="text/csv", Body=csv_body(x4),
                             Accept="application/json", TargetVariant="blue")
    check_eq(res["Body"].read().decode(), expected_body(LLB, x4), "linear learner binary")
    check_eq(res["InvokedProductionVariant"], "blue", "variant name from config")

    # One request whose rows span many batches comes back in its own order.
    allrows = digits_rows()
    res = sm.invoke_endpoint(EndpointName="small-batches", ContentType="text/csv",
                             Accept="text/csv", Body=csv_body(allrows))
    check_eq(res["Body"].read().decode(), expected_body(demo, allrows, "text/csv"),
             "%d rows over batches of 100" % len(allrows))

    # Many concurrent requests share batches; each gets its own rows back.
    results = {}

    def worker(i):
        c = boto3.client("sagemaker-runtime", endpoint_url=gw.url, region_name="us-east-1",
                         aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
        mine = allrows[i * 7:(i * 7) + 1 + i % 7]
        out = c.invoke_endpoint(EndpointName="demo", ContentType="text/csv", Accept="text/csv",
                                Body=csv_body(mine))["Body"].read().decode()
        results[i] = (out, expected_body(demo, mine, "text/csv"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq(sum(1 for got, want in results.values() if got == want), 48,
             "48 concurrent requests each got exactly their predictions")

    metrics = run(["curl", "-sS", gw.url + "/metrics"]).stdout.decode()
    check('infergate_batches_total{endpoint="small-batches",reason="rows"} 17' in metrics,
          "1797 rows at max_batch_rows=100: 17 full batches flushed by rows")
    check("infergate_batch_rows_bucket" in metrics, "batch size histogram exported")

finish()
