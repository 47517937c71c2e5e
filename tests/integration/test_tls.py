"""TLS with ALPN: the same port negotiates h2 or http/1.1; real clients
(curl, nghttp, boto3 over https) get exact predictions."""

import os
import tempfile
import warnings

import boto3
import botocore.config

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows, expected_body,
                   finish, load_model, run)

tmp = tempfile.mkdtemp(prefix="ig-tls-")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
check_eq(r.returncode, 0, "self-signed certificate: " + r.stderr.decode()[-300:])

demo = load_model(DEMO_MODEL)
rows = digits_rows(4)
body = csv_body(rows)
body_path = os.path.join(tmp, "rows.csv")
with open(body_path, "w") as f:
    f.write(body)

gw = Gateway({"demo": {"model": DEMO_MODEL}}, tls_cert=cert, tls_key=key, ping_scheme="https")
with gw:
    url = gw.invoke_url("demo")
    for flag, proto in (("--http2", "HTTP/2"), ("--http1.1", "HTTP/1.1")):
        r = run(["curl", "-sS", "-k", flag, "-D", "-", "-H", "Content-Type: text/csv",
                 "-H", "Accept: text/csv", "--data-binary", "@" + body_path, url])
        head, _, out = r.stdout.decode().partition("\r\n\r\n")
        check(head.startswith(proto + " 200"), "ALPN %s: %s" % (proto, head[:30]))
        check_eq(out, expected_body(demo, rows, "text/csv"), "TLS %s body" % proto)

    r = run(["nghttp", "-m", "8", "-H", "content-type: text/csv", "-d", body_path, url])
    check_eq(r.stdout.decode(), expected_body(demo, rows) * 8, "nghttp over TLS, 8 streams")

    # Cleartext to a TLS port does not get served.
    r = run(["curl", "-sS", "--http1.1", "-m", "5", "-d", "x",
             url.replace("https://", "http://")])
    check(r.returncode != 0, "cleartext request to the TLS port fails")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = boto3.client("sagemaker-runtime", endpoint_url=gw.url, region_name="us-east-1",
                          aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                          verify=False, config=botocore.config.Config(retries={"max_attempts": 1}))
        res = sm.invoke_endpoint(EndpointName="demo", ContentType="text/csv", Body=body)
        check_eq(res["Body"].read().decode(), expected_body(demo, rows), "boto3 over https")

finish()
