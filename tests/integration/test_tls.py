"""TLS with ALPN: the same port negotiates h2 or http/1.1; real clients
(curl, nghttp, boto3 over https) get exact predictions."""

import os
import socket
import ssl
import tempfile
import time
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

    # The end of a connection reaches the client at once (close_notify, then
    # FIN), not when the server's lingering close gives up: after an
    # HTTP/1.1 "Connection: close" answer, and after an HTTP/2 GOAWAY.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for alpn, hello, what in (
            ("http/1.1", b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 Connection: close"),
            ("h2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                   b"\x00\x00\x08\x06\x00\x00\x00\x00\x01h2spec!!", "HTTP/2 GOAWAY")):
        ctx.set_alpn_protocols([alpn])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=5))
        s.sendall(hello)
        got, t0, eof = b"", time.time(), None
        while eof is None:
            try:
                b = s.recv(65536)
            except ssl.SSLError as e:  # a close_notify-less end: not clean
                eof = "ssl error %r" % e
                break
            except (socket.timeout, TimeoutError):
                eof = "timeout"
                break
            if not b:
                eof = "eof"
            got += b
        took = time.time() - t0
        s.close()
        check(eof == "eof" and took < 1.0, "TLS %s: clean close after %.3fs (%s, %d bytes)"
              % (what, took, eof, len(got)))
        if alpn == "h2":
            types, off = [], 0
            while off + 9 <= len(got):
                types.append(got[off + 3])
                off += 9 + int.from_bytes(got[off:off + 3], "big")
            check(7 in types, "TLS h2: a GOAWAY came (frame types %r)" % types)

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
