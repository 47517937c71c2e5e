"""Bad input: each case gets its documented SageMaker-shaped error (status,
x-amzn-ErrorType, exact JSON body), and the gateway keeps serving."""

import json
import os
import socket
import tempfile
import threading

import boto3
import botocore.config
from botocore.exceptions import ClientError

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   expected_body, finish, load_model, run)

demo = load_model(DEMO_MODEL)
rows = digits_rows(2)
good = csv_body(rows)
row = good.splitlines()[0]
tmp = tempfile.mkdtemp(prefix="ig-bad-")


def expect_error(gw, what, status, etype, message, body, headers=("Content-Type: text/csv",),
                 endpoint="demo", http2=False):
    """<message> is the "message" of the body, or the whole body as a dict."""
    st, hd, out = curl(gw.invoke_url(endpoint), body, headers, http2)
    check_eq((st, hd.get("x-amzn-errortype"), hd.get("content-type")),
             (status, etype, "application/json"), what + ": status and error type")
    want = message if isinstance(message, dict) else {"message": message}
    check_eq(out, json.dumps(want, separators=(",", ":")), what + ": body")
    # ... and the gateway keeps serving.
    st2, _, out2 = curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"], http2)
    check_eq((st2, out2), (200, expected_body(demo, rows)), what + ": still serving")


TIMEOUT_MSG = ("Your invocation timed out while waiting for a response from container AllTraffic. "
               "Review the latency metrics for each container in Amazon CloudWatch, resolve the "
               "issue, and try again.")
MODEL_TIMEOUT = {
    "ErrorCode": "SERVER_ERROR_FROM_MODEL",
    "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/slow",
    "Message": 'Received server error (0) from AllTraffic with message "%s".' % TIMEOUT_MSG,
    "OriginalMessage": TIMEOUT_MSG,
    "OriginalStatusCode": 0,
}

with Gateway({"demo": {"model": DEMO_MODEL},
              "tiny-queue": {"model": DEMO_MODEL, "max_queue_rows": "4", "max_delay_us": "2000000",
                             "max_batch_rows": "1000"},
              "slow": {"model": DEMO_MODEL, "max_delay_us": "2000000", "request_timeout_ms": "200"}}
             ) as gw:
    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        expect_error(gw, p + "unknown endpoint", 400, "ValidationError",
                     "Endpoint nope of account 000000000000 not found.", good, endpoint="nope", http2=h2)
        expect_error(gw, p + "truncated quote", 400, "ValidationError",
                     "Row 2, column 1: unterminated quoted field.", row + '\n"1,2\n', http2=h2)
        expect_error(gw, p + "wrong feature count", 400, "ValidationError",
                     "Row 2: expected 64 features, found 3.", row + "\n1,2,3\n", http2=h2)
        expect_error(gw, p + "non-numeric", 400, "ValidationError",
                     "Row 3, column 1: 'abc' is not a number.",
                     row + "\n" + row + "\nabc," + ",".join(["1"] * 63) + "\n", http2=h2)
        expect_error(gw, p + "empty line", 400, "ValidationError", "Row 2: empty row.",
                     row + "\n\n" + row + "\n", http2=h2)
        expect_error(gw, p + "empty body", 400, "ValidationError", "Request body is empty.", "",
                     http2=h2)
        expect_error(gw, p + "huge line", 400, "ValidationError",
                     "Row 1: expected 64 features, found more than 64.",
                     ",".join(["1"] * 1000000) + "\n", http2=h2)
        expect_error(gw, p + "NUL byte", 400, "ValidationError",
                     "Row 1, column 1: NUL byte in the field.", b"a\x00b\n", http2=h2)
        expect_error(gw, p + "invalid JSON", 400, "ValidationError",
                     "Request body is not valid JSON: ']' expected near end of file at line 1 column 18.",
                     '{"instances":[[1,2', headers=("Content-Type: application/json",), http2=h2)
        expect_error(gw, p + "JSON wrong dim", 400, "ValidationError",
                     "Row 1: expected 64 features, found 2.", '{"instances":[{"features":[1,2]}]}',
                     headers=("Content-Type: application/json",), http2=h2)
        expect_error(gw, p + "unsupported content type", 400, "ValidationError",
                     "Content type image/png is not supported by endpoint demo. Supported content "
                     "types: text/csv, application/json, application/jsonlines, "
                     "application/x-recordio-protobuf, text/libsvm.", good,
                     headers=("Content-Type: image/png",), http2=h2)
        expect_error(gw, p + "unsupported accept", 400, "ValidationError",
                     "Accept type image/png is not supported by endpoint demo. Supported accept "
                     "types: text/csv, application/json, application/jsonlines, "
                     "application/x-recordio-protobuf.", good,
                     headers=("Content-Type: text/csv", "Accept: image/png"), http2=h2)
        expect_error(gw, p + "unknown variant", 400, "ValidationError",
                     "Variant green not found for endpoint demo.", good,
                     headers=("Content-Type: text/csv", "X-Amzn-SageMaker-Target-Variant: green"),
                     http2=h2)
        expect_error(gw, p + "inference id too long", 400, "ValidationError",
                     "1 validation error detected: Value at 'inferenceId' failed to satisfy "
                     "constraint: Member must have length between 1 and 64", good,
                     headers=("Content-Type: text/csv", "X-Amzn-SageMaker-Inference-Id: " + "x" * 65),
                     http2=h2)
        expect_error(gw, p + "more rows than the queue holds", 400, "ValidationError",
                     "Request has more than 4 rows.",
                     csv_body(digits_rows(5)), endpoint="tiny-queue", http2=h2)
        # SageMaker's ModelError shape (sagemaker-protocols §1.4): keys and order exact.
        expect_error(gw, p + "deadline", 424, "ModelError", MODEL_TIMEOUT, good, endpoint="slow",
                     http2=h2)
        big = b"1" * (6 * 1024 * 1024 + 1)
        want413 = json.dumps({"message": "Request body of 6291457 bytes exceeds the maximum of "
                              "6291456 bytes."}, separators=(",", ":"))
        if h2:
            # curl 7.88 reports an h2 response that arrives while it is still
            # uploading as error 92 (curl#986); nghttp reads it.
            big_path = os.path.join(tmp, "big.csv")
            with open(big_path, "wb") as f:
                f.write(big)
            r = run(["nghttp", "-v", "-H", "content-type: text/csv", "-d", big_path,
                     gw.invoke_url("demo")])
            v = r.stdout.decode("utf-8", "replace")
            check(":status: 413" in v and "x-amzn-errortype: ValidationError" in v,
                  p + "7 MB body: 413 ValidationError")
            check(want413 in v, p + "413 body")
        else:
            st, hd, out = curl(gw.invoke_url("demo"), big, ["Content-Type: text/csv"], h2)
            check_eq((st, hd.get("x-amzn-errortype")), (413, "ValidationError"), p + "7 MB body: 413")
            check_eq(out, want413, p + "413 body")
        st, _, _ = curl(gw.url + "/nope", good, ["Content-Type: text/csv"], h2)
        check_eq(st, 404, p + "unknown route")
        st, hd, _ = curl(gw.invoke_url("demo"), "", [], h2, method="GET")
        check_eq((st, hd.get("x-amzn-errortype")), (405, "MethodNotAllowed"), p + "GET invocations")

    # A full queue answers ThrottlingException at once.
    results = []

    def fill(accept):
        results.append(curl(gw.invoke_url("tiny-queue"), csv_body(digits_rows(3)),
                            ["Content-Type: text/csv", "Accept: " + accept])[:2])

    # Different Accept types batch apart but share the endpoint's queue cap.
    ts = [threading.Thread(target=fill, args=(a,)) for a in
          ("text/csv", "application/json", "application/jsonlines", "text/csv")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    statuses = sorted((s, h.get("x-amzn-errortype")) for s, h in results)
    check_eq(statuses, [(200, None)] + [(400, "ThrottlingException")] * 3,
             "queue of 4 rows across Accept types: one 3-row request queued, the others throttled")

    # boto3 sees the modeled error codes and messages.
    sm = boto3.client("sagemaker-runtime", endpoint_url=gw.url, region_name="us-east-1",
                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                      config=botocore.config.Config(retries={"max_attempts": 1}))
    try:
        sm.invoke_endpoint(EndpointName="demo", ContentType="text/csv", Body="1,2\n")
        check(False, "boto3: wrong feature count raises")
    except ClientError as e:
        check_eq((e.response["Error"]["Code"], e.response["Error"]["Message"],
                  e.response["ResponseMetadata"]["HTTPStatusCode"]),
                 ("ValidationError", "Row 1: expected 64 features, found 2.", 400),
                 "boto3 ValidationError code and message")
    try:
        sm.invoke_endpoint(EndpointName="slow", ContentType="text/csv", Body=good)
        check(False, "boto3: deadline raises")
    except ClientError as e:
        check_eq((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]),
                 ("ModelError", 424), "boto3 ModelError on deadline")
        # botocore re-parses the body with the modeled ModelError shape.
        check_eq((e.response["Error"]["Message"], e.response.get("OriginalStatusCode"),
                  e.response.get("OriginalMessage"), e.response.get("LogStreamArn")),
                 (MODEL_TIMEOUT["Message"], 0, TIMEOUT_MSG, MODEL_TIMEOUT["LogStreamArn"]),
                 "boto3 ModelError members")

    # Raw garbage and a truncated request on sockets: 400 or a close, never a crash.
    for junk in (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"POST /endpoints/demo/invocations HTTP/1.1\r\nContent-Length: 10\r\n\r\n12"):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    check(gw.alive(), "alive after raw garbage")
    st, _, out = curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"])
    check_eq((st, out), (200, expected_body(demo, rows)), "serving after raw garbage")

finish()
