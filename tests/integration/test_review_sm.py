"""An adversarial review of the sagemaker upstream and its credentials
chain, as a hostile or broken SageMaker runtime or container-credentials
endpoint on loopback (raw sockets: every byte of the answers is the
test's). Findings, each failing before its fix:

S1. A credentials answer whose Expiration ends in an offset cut short
    ("...+", "...+1", "...-") made creds_iso8601 read one or two bytes past
    the heap copy of the value (ASan: heap-buffer-overflow, the gateway
    aborts; the release build read past it silently). Now refused as not
    ISO 8601: the fetch fails, the gateway lives.
S2. Trailers (chunked) were taken for the answer's headers: a trailer's
    Content-Type made a good CSV answer fail as "not valid JSON", a
    trailer's variant replaced the header's.
S3. Two Content-Types that differ: the last one won, and a JSON answer
    reached the client, 200, as a CSV prediction. Now the rows fail.
S4. An x-Amzn-Invoked-Production-Variant longer than 63 bytes was cut,
    silently, into another name (or inside a UTF-8 character) and answered
    as the variant that served the request.
S5. A ModelError's OriginalStatusCode past an int was cast: 4294967696
    became a model's 400 (a client error, its rows bisected), 99999999999 a
    status of 1215752191 in the client's ModelError.

Limits that hold (checked too): no redirect followed (SageMaker's 307, the
credentials endpoint's 307: the other host sees neither the signature nor
the session token nor the authorization token), no Accept-Encoding sent (no
decompression to amplify), a model trickling its answer a byte at a time
is cut at upstream_timeout_ms, headers past 64 KiB are refused, a
credentials answer past 64 KiB fails the fetch without harm, a token,
credentials or config file that is /dev/zero, a directory or too large
stops start-up at once, naming it (never read whole, never blocking).

Run: INFERGATE_BIN=bin/infergate-san /usr/bin/python3 tests/integration/test_review_sm.py
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import (BIN, Gateway, LoopbackServer, check, check_eq, finish, h1_exchange,  # noqa: E402
                   read_head)

SESSION_TOKEN = "SESSIONTOKEN-review-sm-0123456789"
AUTH_TOKEN = "container-auth-token-review-sm"


class Raw(LoopbackServer):
    """An HTTP/1.1 server answering each request with the bytes
    answer(head, body) returns (or a callable taking the socket, which
    then owns the connection). Every request's head and body is kept."""

    def __init__(self, answer):
        self.answer = answer
        self.reqs = []
        super().__init__()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                buf = read_head(s, buf)
                if b"\r\n\r\n" not in buf:
                    return
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                while len(buf) < n:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                self.reqs.append((head, body))
                a = self.answer(head, body)
                if callable(a):
                    a(s)
                    return
                s.sendall(a)
        except OSError:
            pass
        finally:
            s.close()


def resp(code, body, hdrs=()):
    out = b"HTTP/1.1 %d X\r\n" % code
    for k, v in hdrs:
        out += k + b": " + v + b"\r\n"
    return out + b"Content-Length: %d\r\n\r\n" % len(body) + body


CSV3 = [(b"Content-Type", b"text/csv")]


def aws_env(**env):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update(env)


def sm_ep(srv, **kw):
    conf = {"model": "sagemaker://us-east-1/my-ep",
            "endpoint_url": "http://127.0.0.1:%d" % srv.port,
            "content_type": "text/csv", "accept": "text/csv", "max_delay_us": "1000",
            "retry_max": "0", "retry_base_ms": "10", "retry_max_ms": "40"}
    conf.update(kw)
    return conf


def post(gw, ep, body=b"1,2\n", timeout=20):
    """-> (status, {lower-cased header: value}, body bytes) over HTTP/1.1."""
    raw = (b"POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (ep.encode(), len(body)) + body)
    got = h1_exchange(gw.port, raw, timeout=timeout)
    head, _, out = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.1 (\d+)", lines[0]) if lines else None
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip()
    return (int(m.group(1)) if m else 0), hdrs, out


def no_asan(gw, what):
    err = gw.stderr()
    check("AddressSanitizer" not in err and "runtime error:" not in err,
          what + ": no sanitizer report; stderr tail: " + err[-1500:])


# ---- S1: credentials whose Expiration offset stops short ---------------------------

def s1_expiration_offsets():
    for exp in ["2099-01-01T00:00:00+", "2099-01-01T00:00:00+1", "2099-01-01T00:00:00-"]:
        body = json.dumps({"AccessKeyId": "ASIAREVIEW", "SecretAccessKey": "s3cr3t",
                           "Token": SESSION_TOKEN, "Expiration": exp}).encode()
        cred = Raw(lambda h, b, body=body: resp(200, body, [(b"Content-Type",
                                                             b"application/json")]))
        sm = Raw(lambda h, b: resp(200, b"3.0\n", CSV3))
        aws_env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % cred.port)
        try:
            gw = Gateway({"sm": sm_ep(sm)})
        except RuntimeError as e:  # it died on the first fetch's answer, before /ping
            check(False, "S1 %r: the gateway died starting: %s" % (exp, str(e)[:1500]))
            cred.close()
            sm.close()
            continue
        try:
            st, _, out = post(gw, "sm")
            time.sleep(0.2)
            check(gw.alive(), "S1 %r: the gateway lives after the credentials answer" % exp)
            check_eq((st, out.decode(errors="replace")),
                     (500, '{"message":"Row 1: The gateway has no AWS credentials to call '
                           'SageMaker endpoint my-ep (us-east-1): AWS credentials from container: '
                           'their fetch failed (the gateway\'s log says why)"}'),
                     "S1 %r: the request fails naming the failed fetch" % exp)
            check("container credentials from http://127.0.0.1:%d: Expiration missing or not "
                  "ISO 8601" % cred.port in gw.stderr(),
                  "S1 %r: the log says the Expiration is not ISO 8601" % exp)
            check_eq(len(sm.reqs), 0, "S1 %r: nothing sent to SageMaker" % exp)
            no_asan(gw, "S1 %r" % exp)
        finally:
            gw.stop()
            cred.close()
            sm.close()


# ---- S2..S5 and the runtime's limits: one gateway, an endpoint per hostile runtime ---

def trailer_answer(h, b):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
            b"x-Amzn-Invoked-Production-Variant: Blue\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: x-Amzn-Invoked-Production-Variant\r\n\r\n"
            b"4\r\n3.0\n\r\n0\r\nx-Amzn-Invoked-Production-Variant: Evil\r\n"
            b"Content-Type: application/json\r\n\r\n")


def trickle(sock):
    """200, then the answer a byte each 100 ms: longer than the call's 1 s."""
    try:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(60):
            sock.sendall(b"1\r\n3\r\n")
            time.sleep(0.1)
    except OSError:
        pass


def model_error(status):
    body = b'{"OriginalStatusCode":' + status + b',"OriginalMessage":"bad"}'
    return lambda h, b: resp(424, body, [(b"Content-Type", b"application/json"),
                                         (b"x-amzn-ErrorType", b"ModelError")])


def runtime_cases():
    aws_env(AWS_ACCESS_KEY_ID="AKIAREVIEWSM", AWS_SECRET_ACCESS_KEY="secret/key",
            AWS_SESSION_TOKEN=SESSION_TOKEN)
    other = Raw(lambda h, b: resp(200, b"3.0\n", CSV3))
    loc = b"http://127.0.0.1:%d/endpoints/my-ep/invocations" % other.port
    srv = {
        "trailer": Raw(trailer_answer),
        "twotypes": Raw(lambda h, b: resp(200, b'{"predictions":[3.0]}',
                                          [(b"Content-Type", b"application/json"),
                                           (b"Content-Type", b"text/csv")])),
        "sametype": Raw(lambda h, b: resp(200, b"3.0\n", [
            (b"Content-Type", b"text/csv"), (b"content-type", b"Text/CSV ; charset=utf-8")])),
        "longvariant": Raw(lambda h, b: resp(200, b"3.0\n", CSV3 + [
            (b"x-Amzn-Invoked-Production-Variant", b"V" * 100)])),
        "cutvariant": Raw(lambda h, b: resp(200, b"3.0\n", CSV3 + [
            (b"x-Amzn-Invoked-Production-Variant", b"A" * 62 + b"\xc3\xa9")])),
        "blue": Raw(lambda h, b: resp(200, b"3.0\n", CSV3 + [
            (b"x-Amzn-Invoked-Production-Variant", b"Blue-2")])),
        "me4g": Raw(model_error(b"4294967696")),
        "mehuge": Raw(model_error(b"99999999999")),
        "me0": Raw(model_error(b"0")),
        "redirect": Raw(lambda h, b: resp(307, b"", [(b"Location", loc)])),
        "trickle": Raw(lambda h, b: trickle),
        "bighdr": Raw(lambda h, b: resp(200, b"3.0\n", CSV3 + [
            (b"X-Pad-%d" % i, b"p" * 1000) for i in range(70)])),
    }
    eps = {name: sm_ep(s) for name, s in srv.items()}
    eps["trickle"]["upstream_timeout_ms"] = "1000"
    eps["trickle"]["request_timeout_ms"] = "10000"
    gw = Gateway(eps)
    try:
        st, h, out = post(gw, "trailer")
        check_eq((st, h.get("x-amzn-invoked-production-variant"), out),
                 (200, b"Blue", b"3.0\n"),
                 "S2: a trailer changes neither the answer's Content-Type nor its variant")

        check_eq(post(gw, "twotypes")[::2],
                 (500, b'{"message":"Row 1: The model answered two different Content-Types '
                       b'(application/json first); text/csv was asked for."}'),
                 "S3: two Content-Types that differ: the row fails, not read in the last one")
        check_eq(post(gw, "sametype")[::2], (200, b"3.0\n"),
                 "S3: the same Content-Type twice (case, blanks, parameters aside) is read")

        for ep in ("longvariant", "cutvariant"):
            st, h, out = post(gw, ep)
            check_eq((st, h.get("x-amzn-invoked-production-variant"), out),
                     (200, b"AllTraffic", b"3.0\n"),
                     "S4 %s: a variant that is no name is not answered (the endpoint's is)" % ep)
        st, h, out = post(gw, "blue")
        check_eq((st, h.get("x-amzn-invoked-production-variant")), (200, b"Blue-2"),
                 "S4: a variant name is answered as SageMaker said it")

        for ep, code in (("me4g", b"4294967696"), ("mehuge", b"99999999999")):
            check_eq(post(gw, ep)[::2],
                     (500, b'{"message":"Row 1: SageMaker refused the call (424 ModelError): '
                           b'{\\"OriginalStatusCode\\":' + code +
                           b',\\"OriginalMessage\\":\\"bad\\"}"}'),
                     "S5 %s: an OriginalStatusCode past any HTTP status is not the model's" % ep)
        st, _, out = post(gw, "me0")
        check_eq((st, json.loads(out).get("OriginalStatusCode")), (424, 0),
                 "S5: OriginalStatusCode 0 (no answer from the container) is relayed")

        st, _, out = post(gw, "redirect")
        check_eq((st, out), (500, b'{"message":"Row 1: SageMaker answered 307 error: "}'),
                 "limits: SageMaker's 307 is its answer, not followed")
        check_eq(len(other.reqs), 0, "limits: the redirect's target got nothing (no signature, "
                                     "no session token)")
        head = srv["redirect"].reqs[0][0].lower() if srv["redirect"].reqs else b""
        check(b"\r\nx-amz-security-token: " + SESSION_TOKEN.lower().encode() in head and
              b"\r\naccept-encoding" not in head,
              "limits: the call carries the session token and no Accept-Encoding: %r" % head)

        t0 = time.monotonic()
        st, _, out = post(gw, "trickle")
        took = time.monotonic() - t0
        check_eq((st, json.loads(out or b"{}").get("OriginalStatusCode")), (424, 0),
                 "limits: an answer trickled a byte at a time times out as a ModelError")
        check(0.9 < took < 4, "limits: cut at upstream_timeout_ms 1 s (%.2f s)" % took)

        check_eq(post(gw, "bighdr")[::2],
                 (500, b'{"message":"Row 1: The model\'s answer has more than 65536 bytes of '
                       b'headers."}'),
                 "limits: 70 KiB of headers refused")
        check(SESSION_TOKEN not in gw.stderr(), "limits: the session token is not in the log")
        check(gw.alive(), "the gateway lives")
        no_asan(gw, "runtime cases")
    finally:
        code = gw.stop()
        check_eq(code, 0, "runtime cases: the gateway exits 0 on SIGTERM")
        for s in list(srv.values()) + [other]:
            s.close()


# ---- the container-credentials endpoint's limits -----------------------------------

def creds_limits():
    other = Raw(lambda h, b: resp(200, b"{}", []))
    cases = {
        "redirect": lambda h, b: resp(307, b"", [(b"Location", b"http://127.0.0.1:%d/creds"
                                                  % other.port)]),
        "huge": lambda h, b: resp(200, b'{"AccessKeyId":"' + b"A" * 70000 + b'"}',
                                  [(b"Content-Type", b"application/json")]),
    }
    for name, answer in cases.items():
        cred = Raw(answer)
        sm = Raw(lambda h, b: resp(200, b"3.0\n", CSV3))
        aws_env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % cred.port,
                AWS_CONTAINER_AUTHORIZATION_TOKEN=AUTH_TOKEN)
        gw = Gateway({"sm": sm_ep(sm)})
        try:
            st, _, out = post(gw, "sm")
            check_eq(st, 500, "creds %s: the request fails" % name)
            check(b"their fetch failed" in out, "creds %s: naming the failed fetch: %r"
                  % (name, out))
            check_eq(len(sm.reqs), 0, "creds %s: nothing sent to SageMaker" % name)
            check(len(cred.reqs) >= 1 and (b"\r\nauthorization: " + AUTH_TOKEN.encode())
                  in cred.reqs[0][0].lower(),
                  "creds %s: the credentials endpoint got the token" % name)
            check(AUTH_TOKEN not in gw.stderr(), "creds %s: the token is not in the log" % name)
            check(gw.alive(), "creds %s: the gateway lives" % name)
            no_asan(gw, "creds " + name)
        finally:
            gw.stop()
            cred.close()
            sm.close()
    check_eq(len(other.reqs), 0,
             "creds redirect: its target got nothing (the authorization token stayed home)")
    other.close()


# ---- credentials, config and token files that are not files ------------------------

def files_limits():
    d = tempfile.mkdtemp(prefix="ig-review-sm-")
    os.mkdir(os.path.join(d, "dir"))
    with open(os.path.join(d, "big"), "wb") as f:
        f.write(b"a" * 2000000)
    conf = os.path.join(d, "g.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:0\n[endpoint sm]\nmodel = sagemaker://us-east-1/my-ep\n"
                "endpoint_url = http://127.0.0.1:9\n")
    web = {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
           "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9"}
    pre = "model: sagemaker://us-east-1/my-ep: "
    cases = [
        (dict(web, AWS_WEB_IDENTITY_TOKEN_FILE="/dev/zero"),
         "AWS_WEB_IDENTITY_TOKEN_FILE: /dev/zero: not a regular file"),
        (dict(web, AWS_WEB_IDENTITY_TOKEN_FILE=d + "/dir"),
         "AWS_WEB_IDENTITY_TOKEN_FILE: %s/dir: not a regular file" % d),
        (dict(web, AWS_WEB_IDENTITY_TOKEN_FILE=d + "/big"),
         "AWS_WEB_IDENTITY_TOKEN_FILE: %s/big: larger than 16384 bytes" % d),
        ({"AWS_SHARED_CREDENTIALS_FILE": "/dev/zero"}, "/dev/zero: not a regular file"),
        ({"AWS_SHARED_CREDENTIALS_FILE": d + "/big"}, "%s/big: larger than 1048576 bytes" % d),
        ({"AWS_CONFIG_FILE": d + "/dir"}, "%s/dir: not a regular file" % d),
    ]
    for env, want in cases:
        env = dict(env, HOME=d, PATH="/usr/bin:/bin")
        p = subprocess.run([BIN, "--config", conf], env=env, capture_output=True, timeout=20)
        err = (p.stdout + p.stderr).decode(errors="replace")
        check_eq((p.returncode, (pre + want) in err), (2, True),
                 "files %s: start-up stops naming it; output: %s" % (want, err[-600:]))


def main():
    t0 = time.monotonic()
    saved = dict(os.environ)
    try:
        s1_expiration_offsets()
        runtime_cases()
        creds_limits()
        files_limits()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print("test_review_sm.py: %.1f s" % (time.monotonic() - t0))
    finish()


if __name__ == "__main__":
    main()
