"""Python httpx (Debian's python3-httpx, HTTP/2 through python3-h2) against the
real gateway: over h2c with prior knowledge, over TLS with ALPN h2, and over
HTTP/1.1. Exact predictions in every format; a body over 6 MiB answered 413
with SageMaker's exact error body, and the next request on the same client
served (issue 13 point 15: the answer comes before the body has arrived, and
must not strand the connection); ThrottlingException visible, both from a
full queue and, before the body has arrived, from the server-wide cap on
request-body bytes.

Every call runs under httpx's own timeouts and a watchdog, so a client that
the gateway strands is a failure, never a stuck CI."""

import json
import os
import re
import socket
import sys
import tempfile
import threading
import time

try:
    import httpx
except ImportError:
    # Debian's python3-httpx serves the system interpreter (run.sh uses
    # /usr/bin/python3); re-run under it when started from another python3.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and \
            os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows, expected_body,
                   finish, load_model, run)

demo = load_model(DEMO_MODEL)
allrows = digits_rows()
rows5 = allrows[:5]
FORMATS = ("text/csv", "application/json", "application/jsonlines")
MAX_BODY = 6291456
TIMEOUT = httpx.Timeout(5.0)  # each connect, read, write and pool wait
WATCHDOG_S = 20.0             # a whole call, whatever httpx's timeouts do
tmp = tempfile.mkdtemp(prefix="ig-httpx-")


def sm_error(message):
    return json.dumps({"message": message}, separators=(",", ":"))


MSG_413 = sm_error("Request body of %d bytes exceeds the maximum of %d bytes."
                   % (MAX_BODY + 1, MAX_BODY))


def encode(rows, ctype):
    if ctype == "text/csv":
        return csv_body(rows)
    if ctype == "application/json":
        return json.dumps({"instances": [{"features": r} for r in rows]})
    return "".join(json.dumps({"features": r}) + "\n" for r in rows)


def post(client, url, body, ctype="text/csv", accept=None):
    """POST under a watchdog. -> (status, http_version, errortype,
    content-type, body text), or ("error", exception name, message) when
    httpx raised, or ("hung", seconds) when the watchdog fired."""
    headers = {"Content-Type": ctype}
    if accept:
        headers["Accept"] = accept
    box = {}

    def call():
        try:
            r = client.post(url, content=body, headers=headers)
            box["r"] = (r.status_code, r.http_version, r.headers.get("x-amzn-errortype"),
                        r.headers.get("content-type"), r.text)
        except Exception as e:  # noqa: BLE001 - what the client raised is the result
            box["r"] = ("error", type(e).__name__, str(e)[:200])

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(WATCHDOG_S)
    return box.get("r", ("hung", WATCHDOG_S))


def clients(gw):
    """(label, client, expected http_version) for each way httpx talks to <gw>."""
    if gw.url.startswith("https"):
        return [("tls h2", httpx.Client(http2=True, verify=False, timeout=TIMEOUT), "HTTP/2"),
                ("tls h1", httpx.Client(verify=False, timeout=TIMEOUT), "HTTP/1.1")]
    return [("h2c", httpx.Client(http1=False, http2=True, timeout=TIMEOUT), "HTTP/2"),
            ("h1", httpx.Client(timeout=TIMEOUT), "HTTP/1.1")]


def basics(gw):
    url = gw.invoke_url("demo")
    big = b"1" * (MAX_BODY + 1)
    for label, c, ver in clients(gw):
        with c:
            for ct in FORMATS:
                for acc in FORMATS:
                    got = post(c, url, encode(rows5, ct), ct, acc)
                    check_eq(got, (200, ver, None, acc, expected_body(demo, rows5, acc)),
                             "%s: %s -> %s" % (label, ct, acc))
            # Early refusal: the 413 comes before the body has arrived. The
            # client must see it, twice in a row, and then be served.
            for i in (1, 2):
                t0 = time.monotonic()
                got = post(c, url, big)
                check_eq(got, (413, ver, "ValidationError", "application/json", MSG_413),
                         "%s: over-6-MiB body #%d answered 413 with SageMaker's error body"
                         % (label, i))
                print("%s: over-6-MiB body #%d: %.2f s" % (label, i, time.monotonic() - t0),
                      flush=True)
            got = post(c, url, csv_body(rows5), "text/csv", "text/csv")
            check_eq(got, (200, ver, None, "text/csv", expected_body(demo, rows5, "text/csv")),
                     "%s: the next request on the same client after two 413s" % label)


def throttled_queue(gw):
    """A 3-row request waits for its batch (2 s); a second one on the same
    client does not fit beside it in a 4-row queue."""
    url = gw.invoke_url("tiny-queue")
    for label, c, ver in clients(gw):
        with c:
            out = {}

            def first():
                out["a"] = post(c, url, csv_body(allrows[:3]), "text/csv", "text/csv")

            t = threading.Thread(target=first)
            t.start()
            time.sleep(0.3)
            out["b"] = post(c, url, csv_body(allrows[3:6]), "text/csv", "text/csv")
            t.join()
            check_eq(out["b"], (400, ver, "ThrottlingException", "application/json",
                                sm_error("Endpoint tiny-queue is over its queue limit of 4 rows; "
                                         "retry later.")),
                     "%s: ThrottlingException from a full queue" % label)
            check_eq(out["a"], (200, ver, None, "text/csv",
                                expected_body(demo, allrows[:3], "text/csv")),
                     "%s: the queued request is served" % label)


CAP = 1048576
HELD = 700000  # one partial upload declares this many bytes...
SENT = 699000  # ...and sends this many, then stalls


def metric(gw, name):
    m = run(["curl", "-sS", "-m", "5", gw.url + "/metrics"]).stdout.decode()
    found = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % re.escape(name), m, re.M)
    return int(found.group(1)) if found else None


def throttled_cap(gw):
    """Server-wide cap on request-body bytes: beside a stalled upload holding
    ~700 kB, a 491 kB body does not fit and is answered ThrottlingException
    before it has arrived; the next request on the same client is served."""
    url = gw.invoke_url("demo")
    big = csv_body(allrows)
    check(len(big) > CAP - HELD and len(big) <= CAP,
          "all rows (%d bytes) fit under the cap only alone" % len(big))
    want = sm_error("The gateway is holding its limit of %d bytes for clients; retry later."
                    % CAP)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(("POST /endpoints/demo/invocations HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % HELD).encode())
    s.sendall(b"0" * SENT)
    # Wait until the gateway holds those bytes (the gauge shows them).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        held = metric(gw, "infergate_buffered_body_bytes")
        if held is not None and held >= SENT:
            break
        time.sleep(0.05)
    for label, c, ver in clients(gw):
        with c:
            got = post(c, url, big, "text/csv", "text/csv")
            check_eq(got, (400, ver, "ThrottlingException", "application/json", want),
                     "%s: ThrottlingException before the body has arrived" % label)
            got = post(c, url, csv_body(rows5), "text/csv", "text/csv")
            check_eq(got, (200, ver, None, "text/csv", expected_body(demo, rows5, "text/csv")),
                     "%s: the next request on the same client after the throttle" % label)
    s.close()


eps = {"demo": {"model": DEMO_MODEL},
       "tiny-queue": {"model": DEMO_MODEL, "max_queue_rows": "4", "max_delay_us": "2000000",
                      "max_batch_rows": "1000"}}
with Gateway(eps) as gw:
    basics(gw)
    throttled_queue(gw)
    check(gw.alive(), "h2c/h1 gateway alive")

cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
check_eq(r.returncode, 0, "self-signed certificate: " + r.stderr.decode()[-300:])
with Gateway(eps, tls_cert=cert, tls_key=key, ping_scheme="https") as gw:
    basics(gw)
    check(gw.alive(), "TLS gateway alive")

with Gateway({"demo": {"model": DEMO_MODEL}}, max_buffered_body_bytes=str(CAP),
             max_body_bytes=str(CAP)) as gw:
    throttled_cap(gw)
    check(gw.alive(), "capped gateway alive")

finish()
