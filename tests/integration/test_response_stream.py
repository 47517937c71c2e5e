"""InvokeEndpointWithResponseStream (POST /endpoints/NAME/invocations-response-stream):
the answer is AWS event-stream framing (PayloadPart events, CRCs), its Accept
comes in X-Amzn-SageMaker-Accept and the model's type goes back in
X-Amzn-SageMaker-Content-Type; errors before the stream are plain HTTP errors.
Read by the AWS SDK for JavaScript v3 (Debian's botocore predates the
operation) over HTTP/1.1 and HTTP/2, and parsed byte by byte here."""

import json
import os
import struct
import subprocess
import tempfile
import zlib

from iglib import (DEMO_MODEL, ROOT, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   expected_body, finish, load_model)

JS_DIR = os.path.join(ROOT, "tests", "js")
model = load_model(DEMO_MODEL)
tmp = tempfile.mkdtemp(prefix="ig-rs-")


def events(raw):
    """Parse event-stream messages, checking both CRCs -> [(headers, payload)]."""
    out, off = [], 0
    while off < len(raw):
        total, hl, pcrc = struct.unpack(">III", raw[off:off + 12])
        check_eq(pcrc, zlib.crc32(raw[off:off + 8]), "prelude CRC of message at %d" % off)
        msg = raw[off:off + total]
        check_eq(struct.unpack(">I", msg[-4:])[0], zlib.crc32(msg[:-4]),
                 "message CRC of message at %d" % off)
        h, p, hdrs = msg[12:12 + hl], 0, {}
        while p < len(h):
            n = h[p]
            name = h[p + 1:p + 1 + n].decode()
            typ = h[p + 1 + n]
            check_eq(typ, 7, "header %s is a string" % name)
            vl = struct.unpack(">H", h[p + 2 + n:p + 4 + n])[0]
            hdrs[name] = h[p + 4 + n:p + 4 + n + vl].decode()
            p += 4 + n + vl
        out.append((hdrs, msg[12 + hl:-4]))
        off += total
    return out


def raw_post(gw, path, body, headers):
    d = tempfile.mkdtemp(dir=tmp)
    bf, hf, of = (os.path.join(d, x) for x in ("body", "head", "out"))
    with open(bf, "wb") as f:
        f.write(body.encode())
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "-D", hf, "-o", of, "--data-binary", "@" + bf]
    for h in headers:
        cmd += ["-H", h]
    subprocess.run(cmd + [gw.url + path], check=True, timeout=60)
    with open(hf) as f:
        head = f.read()
    with open(of, "rb") as f:
        return head, f.read()


rows = digits_rows(50)
body = csv_body(rows)
with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
    for accept in ("text/csv", "application/jsonlines", "application/json"):
        head, raw = raw_post(gw, "/endpoints/demo/invocations-response-stream", body,
                             ["Content-Type: text/csv", "X-Amzn-SageMaker-Accept: " + accept])
        hl = head.lower()
        check("content-type: application/vnd.amazon.eventstream" in hl,
              "%s: Content-Type application/vnd.amazon.eventstream" % accept)
        check("x-amzn-sagemaker-content-type: %s" % accept in hl,
              "%s: the model's type in X-Amzn-SageMaker-Content-Type" % accept)
        evs = events(raw)
        check(len(evs) >= 1, "%s: at least one event" % accept)
        check(all(h == {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                        ":message-type": "event"} for h, _ in evs),
              "%s: every event a PayloadPart with the three headers" % accept)
        check_eq(b"".join(p for _, p in evs).decode(), expected_body(model, rows, accept),
                 "%s: the payloads joined are the exact predictions" % accept)

    # Larger than one part (1 MiB): several events, joined exactly.
    big_rows = digits_rows() * 12
    head, raw = raw_post(gw, "/endpoints/demo/invocations-response-stream", csv_body(big_rows),
                         ["Content-Type: text/csv", "X-Amzn-SageMaker-Accept: application/json"])
    evs = events(raw)
    want = expected_body(model, big_rows, "application/json")
    check(len(want) > 1 << 20 and len(evs) == (len(want) + (1 << 20) - 1) // (1 << 20),
          "a %d-byte answer in %d events of at most 1 MiB" % (len(want), len(evs)))
    check_eq(b"".join(p for _, p in evs).decode(), want, "the big answer joined exactly")

    # Errors before the stream are plain SageMaker errors.
    st, hd, out = curl(gw.url + "/endpoints/nope/invocations-response-stream", body,
                       ["Content-Type: text/csv"])
    check_eq((st, hd.get("x-amzn-errortype"), json.loads(out)),
             (400, "ValidationError", {"message": "Endpoint nope of account 000000000000 not found."}),
             "unknown endpoint: 400 ValidationError, as JSON, no stream")
    st, hd, out = curl(gw.url + "/endpoints/demo/invocations-response-stream", "1,2\n",
                       ["Content-Type: text/csv"])
    check(st == 400 and hd.get("x-amzn-errortype") == "ValidationError" and "Row 1" in out,
          "a bad row: 400 ValidationError naming the row, no stream (%d %s)" % (st, out))
    st, hd, out = curl(gw.url + "/endpoints/demo/invocations-response-stream", body,
                       ["Content-Type: text/csv", "X-Amzn-SageMaker-Accept: image/png"])
    check(st == 400 and "Accept type image/png" in out,
          "an Accept it cannot produce, from X-Amzn-SageMaker-Accept: 400 (%d %s)" % (st, out))
    st, hd, out = curl(gw.url + "/endpoints/demo/invocations-response-stream", body,
                       ["Content-Type: text/csv"], method="PUT")
    check_eq(st, 405, "PUT: 405 MethodNotAllowed")

    # The JS SDK reads it, over HTTP/1.1 and HTTP/2.
    bf = os.path.join(tmp, "sdk-body.csv")
    with open(bf, "w") as f:
        f.write(body)
    p = subprocess.run(["node", os.path.join(JS_DIR, "stream_test.mjs"), gw.url, "demo", "text/csv",
                        "text/csv", bf], cwd=JS_DIR, capture_output=True, timeout=90)
    lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.startswith("{")]
    for r in lines:
        check_eq((r.get("ok"), r.get("contentType"), r.get("variant"), r.get("body")),
                 (True, "text/csv", "AllTraffic", expected_body(model, rows, "text/csv")),
                 "JS SDK %s: InvokeEndpointWithResponseStream reads the exact predictions" % r["handler"])
    check_eq(sorted(r["handler"] for r in lines), ["h1", "h2"],
             "the JS SDK ran over both protocols (stderr: %s)" % p.stderr.decode()[-500:])

    # boto3 reads it too: Debian's botocore (1.29) predates the operation, so
    # its sagemaker-runtime model gets the operation as the API reference
    # defines it (input as InvokeEndpoint's, Accept in X-Amzn-SageMaker-Accept;
    # output a ResponseStream event stream of PayloadPart events and the
    # ModelStreamError and InternalStreamFailure exceptions); botocore's own
    # event-stream parser (S3 Select's, Kinesis's) then reads the answer.
    import boto3
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.Loader()
    svc = loader.load_service_model("sagemaker-runtime", "service-2")
    svc["operations"]["InvokeEndpointWithResponseStream"] = {
        "name": "InvokeEndpointWithResponseStream",
        "http": {"method": "POST",
                 "requestUri": "/endpoints/{EndpointName}/invocations-response-stream"},
        "input": {"shape": "InvokeEndpointWithResponseStreamInput"},
        "output": {"shape": "InvokeEndpointWithResponseStreamOutput"},
        "errors": [{"shape": "InternalFailure"}, {"shape": "ServiceUnavailable"},
                   {"shape": "ValidationError"}, {"shape": "ModelError"},
                   {"shape": "ModelStreamError"}, {"shape": "InternalStreamFailure"}],
    }
    inp = json.loads(json.dumps(svc["shapes"]["InvokeEndpointInput"]))
    inp["members"]["Accept"]["locationName"] = "X-Amzn-SageMaker-Accept"
    for m in ("InferenceId", "EnableExplanations", "TargetContainerHostname",
              "InferenceComponentName", "TargetModel"):
        inp["members"].pop(m, None)
    svc["shapes"]["InvokeEndpointWithResponseStreamInput"] = inp
    svc["shapes"]["InvokeEndpointWithResponseStreamOutput"] = {
        "type": "structure", "required": ["Body"], "payload": "Body",
        "members": {
            "Body": {"shape": "ResponseStream"},
            "ContentType": {"shape": "Header", "location": "header",
                            "locationName": "X-Amzn-SageMaker-Content-Type"},
            "InvokedProductionVariant": {"shape": "Header", "location": "header",
                                         "locationName": "x-Amzn-Invoked-Production-Variant"},
            "CustomAttributes": {"shape": "CustomAttributesHeader", "location": "header",
                                 "locationName": "X-Amzn-SageMaker-Custom-Attributes"},
        }}
    svc["shapes"]["ResponseStream"] = {
        "type": "structure", "eventstream": True,
        "members": {"PayloadPart": {"shape": "PayloadPart"},
                    "ModelStreamError": {"shape": "ModelStreamError"},
                    "InternalStreamFailure": {"shape": "InternalStreamFailure"}}}
    svc["shapes"]["PayloadPart"] = {
        "type": "structure", "event": True,
        "members": {"Bytes": {"shape": "PartBlob", "eventpayload": True}}}
    svc["shapes"]["PartBlob"] = {"type": "blob", "sensitive": True}
    svc["shapes"]["ModelStreamError"] = {
        "type": "structure", "exception": True,
        "members": {"Message": {"shape": "Message"}, "ErrorCode": {"shape": "Message"}}}
    svc["shapes"]["InternalStreamFailure"] = {
        "type": "structure", "exception": True, "members": {"Message": {"shape": "Message"}}}
    svc["shapes"].setdefault("Message", {"type": "string", "max": 2048})
    mdir = os.path.join(tmp, "models", "sagemaker-runtime", svc["metadata"]["apiVersion"])
    os.makedirs(mdir)
    with open(os.path.join(mdir, "service-2.json"), "w") as f:
        json.dump(svc, f)
    bs = botocore.session.get_session()
    bs.get_component("data_loader").search_paths.insert(0, os.path.join(tmp, "models"))
    cl = boto3.Session(botocore_session=bs).client(
        "sagemaker-runtime", endpoint_url=gw.url, region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    for accept in ("text/csv", "application/json"):
        r = cl.invoke_endpoint_with_response_stream(EndpointName="demo", Body=body.encode(),
                                                    ContentType="text/csv", Accept=accept)
        parts = [e["PayloadPart"]["Bytes"] for e in r["Body"]]
        check_eq((r["ContentType"], r["InvokedProductionVariant"], b"".join(parts).decode()),
                 (accept, "AllTraffic", expected_body(model, rows, accept)),
                 "boto3 %s: invoke_endpoint_with_response_stream reads the exact predictions "
                 "from PayloadPart events" % accept)
    try:
        cl.invoke_endpoint_with_response_stream(EndpointName="nope", Body=b"1,2\n",
                                                ContentType="text/csv")
        check(False, "boto3: an unknown endpoint raises")
    except cl.exceptions.ValidationError as e:
        check_eq(e.response["Error"]["Message"], "Endpoint nope of account 000000000000 not found.",
                 "boto3: an unknown endpoint is its ValidationError, message and all")

finish()
