"""The sagemaker upstream (model = sagemaker://REGION/ENDPOINT, endpoint_url)
against a fake SageMaker runtime on loopback that checks every call's SigV4
signature on its own, with botocore's signer (Debian's python3-botocore),
and answers InvokeEndpoint as SageMaker does: one prediction per row (the
sum of the row's features, so each client's exact answer is known), and on
demand ThrottlingException, 503, a ModelError for a batch holding a poison
row, ValidationError. A fake STS (AssumeRoleWithWebIdentity) and a fake
container-credentials endpoint hand out short-lived keys.

Each case runs a gateway with its own environment: every AWS_* variable
cleared, HOME a fresh directory, then only the credentials source it tests."""

import contextlib
import datetime
import http.client
import http.server
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from iglib import AWS, BIN, ROOT, Gateway, check, check_eq, curl, finish, free_port

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
SM_NAME = "my-ep"  # the SageMaker endpoint behind the gateway's endpoint "sm"
SM_PATH = "/endpoints/%s/invocations" % SM_NAME
POISON = "666"  # a row whose first feature is this makes its call fail with a ModelError
tmp = tempfile.mkdtemp(prefix="ig-sm-")


def iso8601(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the keys the fakes know ------------------------------------------------


def sm_model_error(status, message):
    """SageMaker's 424 ModelError for a model that answered <status> <message>."""
    kind = "server" if status >= 500 else "client"
    return 424, [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ModelError")], \
        json.dumps({"ErrorCode": "%s_ERROR_FROM_MODEL" % kind.upper(),
                    "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:"
                                    "/aws/sagemaker/Endpoints/" + SM_NAME,
                    "Message": 'Received %s error (%d) from primary with message "%s".'
                               % (kind, status, message),
                    "OriginalMessage": message,
                    "OriginalStatusCode": status}).encode()

class Keys:
    """Access key id -> (secret, session token or None, expiration or None)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}

    def add(self, ak, sk, tok=None, exp=None):
        with self.lock:
            self.keys[ak] = (sk, tok, exp)

    def get(self, ak):
        with self.lock:
            return self.keys.get(ak)


KEYS = Keys()


class Server:
    """A threading HTTP/1.1 server on a free loopback port; <route(handler,
    method, path, headers, body)> -> (status, headers list, body bytes)."""

    def __init__(self, route):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                # http.server decodes header bytes as Latin-1; botocore signs
                # text as UTF-8: back to the bytes received, read as UTF-8.
                hdrs = {k.lower(): v.encode("latin-1").decode("utf-8", "replace")
                        for k, v in self.headers.items()}
                status, out_hdrs, out = route(method, self.path, hdrs, body)
                self.send_response(status)
                for k, v in out_hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    # the peer left first (a gateway stopped while a slow
                    # fetch was out): counted, asserted where it matters
                    outer.gone.append(self.path)
                    self.close_connection = True

            def do_POST(self):
                self.handle_any("POST")

            def do_GET(self):
                self.handle_any("GET")

        self.gone = []  # paths of answers the peer did not stay for
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=outer.httpd.serve_forever, daemon=True).start()


def aws_error(status, etype, message):
    return status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", etype),
                    ("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")], \
        json.dumps({"message": message}).encode()


# ---- the fake SageMaker runtime -------------------------------------------------

def verify_sigv4(method, path, hdrs, body, now):
    """The call's signature checked on its own with botocore's SigV4: None
    when it verifies, else why not. Rebuilt from what was received: method,
    path, the headers named in SignedHeaders (Host among them) and the body,
    signed at the call's own X-Amz-Date with the key its Credential names."""
    auth = hdrs.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/,]+)/([^/,]+)/"
                     r"aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        return "malformed Authorization header: %r" % auth[:200]
    ak, day, region, service, signed, sig = m.groups()
    amz_date = hdrs.get("x-amz-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        return "X-Amz-Date %r is not YYYYMMDDTHHMMSSZ" % amz_date
    if day != amz_date[:8] or region != REGION or service != "sagemaker":
        return "credential scope %s/%s/%s is not %s/%s/sagemaker" % (day, region, service,
                                                                      amz_date[:8], REGION)
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    if abs(signed_at - now) > 300:
        return "X-Amz-Date %s is more than 5 minutes from now" % amz_date
    key = KEYS.get(ak)
    if key is None:
        return "unknown access key id %s" % ak
    sk, tok, exp = key
    names = signed.split(";")
    if names != sorted(names) or "host" not in names or "x-amz-date" not in names:
        return "SignedHeaders %s: not sorted, or without host and x-amz-date" % signed
    for n in names:
        if n not in hdrs:
            return "signed header %s not sent" % n
    if tok is not None:
        if hdrs.get("x-amz-security-token") != tok or "x-amz-security-token" not in names:
            return "X-Amz-Security-Token missing, unsigned or not the one issued with %s" % ak
    elif "x-amz-security-token" in hdrs:
        return "X-Amz-Security-Token sent with long-term key %s" % ak
    req = AWSRequest(method=method, url="http://%s%s" % (hdrs["host"], path), data=body,
                     headers={n: hdrs[n] for n in names})
    req.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ak, sk, tok), "sagemaker", REGION)
    want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    if want != sig:
        return "signature mismatch (canonical request as botocore sees it: %r)" % \
            signer.canonical_request(req)
    if exp is not None and now >= exp:
        return "EXPIRED: %s expired at %s, call at %.3f" % (ak, iso8601(exp), now)
    return None


def parse_rows(ctype, body):
    """The rows of a call, each as its list of features."""
    text = body.decode()
    if ctype == "text/csv":
        return [[float(v) for v in line.split(",")] for line in text.split("\n") if line]
    if ctype == "application/jsonlines":
        rows = [json.loads(line) for line in text.split("\n") if line.strip()]
    else:
        rows = json.loads(text)["instances"]
    return [r["features"] if isinstance(r, dict) else r for r in rows]


def pred(row, accept):
    s = repr(float(sum(row)))
    return s if accept == "text/csv" else '{"score":%s}' % s


class Runtime:
    """The fake runtime. Every call is recorded; <script> is a list of
    failures the next calls get ("throttle", "503"); <validation> refuses
    every call with a ValidationError."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []
        self.script = []
        self.validation = None
        self.delay = 0.0
        self.variant = "AllTraffic"
        self.server = Server(self.route)
        self.url = self.server.url

    def reset(self):
        with self.lock:
            self.calls = []
            self.script = []
            self.validation = None
            self.delay = 0.0
            self.variant = "AllTraffic"

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def route(self, method, path, hdrs, body):
        now = time.time()
        bad = verify_sigv4(method, path, hdrs, body, now)
        auth = hdrs.get("authorization", "")
        m = re.search(r"SignedHeaders=([^,]+)", auth)
        rec = {"ak": (re.search(r"Credential=([^/]+)/", auth) or [None, None])[1],
               "token": hdrs.get("x-amz-security-token"),
               "signed": m.group(1).split(";") if m else [],
               "path": path, "body": body, "ctype": hdrs.get("content-type"),
               "accept": hdrs.get("accept"), "bad": bad, "at": now,
               "amz_date": hdrs.get("x-amz-date"),
               "custom": hdrs.get("x-amzn-sagemaker-custom-attributes"),
               "inference_id": hdrs.get("x-amzn-sagemaker-inference-id"),
               "target": hdrs.get("x-amzn-sagemaker-target-variant"),
               "status": 0}
        with self.lock:
            self.calls.append(rec)
            fail = self.script.pop(0) if self.script and bad is None else None
            validation = self.validation
            delay = self.delay
            variant = self.variant
        if delay:
            time.sleep(delay)
        ans = self.answer(method, path, hdrs, body, bad, fail, validation, variant)
        rec["status"] = ans[0]
        return ans

    def answer(self, method, path, hdrs, body, bad, fail, validation, variant):
        if bad is not None:
            if bad.startswith("EXPIRED"):
                return aws_error(403, "ExpiredTokenException", "The security token included in "
                                 "the request is expired")
            return aws_error(403, "InvalidSignatureException", bad)
        if method != "POST" or path != SM_PATH:
            return aws_error(400, "ValidationError", "Endpoint %s of account 123456789012 not "
                             "found." % path)
        if fail == "throttle":
            return 400, [("Content-Type", "application/json"),
                         ("x-amzn-ErrorType", "ThrottlingException")], \
                b'{"message":"Rate exceeded"}'
        if fail == "503":
            return aws_error(503, "ServiceUnavailable", "The service is unavailable.")
        if fail == "sigmismatch":  # AWS's words, with the canonical string (token included)
            req = AWSRequest(method=method, url="http://%s%s" % (hdrs["host"], path), data=body,
                             headers={n: hdrs[n] for n in ("accept", "content-type", "host",
                                                           "x-amz-date", "x-amz-security-token")
                                      if n in hdrs})
            req.context["timestamp"] = hdrs.get("x-amz-date")
            creq = SigV4Auth(Credentials("x", "y"), "sagemaker", REGION).canonical_request(req)
            st, h, out = aws_error(403, "InvalidSignatureException",
                                   "The request signature we calculated does not match the "
                                   "signature you provided. Check your AWS Secret Access Key and "
                                   "signing method. Consult the service documentation for "
                                   "details.\n\nThe Canonical String for this request should "
                                   "have been\n'%s'" % creq)
            return st, h, out.replace(b"/", b"\\/")  # JSON may escape '/' (a token holds some)
        if fail == "model500":  # the container behind SageMaker failed
            return sm_model_error(500, "model crashed")
        if fail == "hugemodel400":  # a model's 4xx whose message passes the answer's cap
            return sm_model_error(400, "E" * 700000)
        if fail == "notready":  # serverless provisioning, a multi-model endpoint loading
            return 429, [("Content-Type", "application/json"),
                         ("x-amzn-ErrorType", "ModelNotReadyException")], \
                b'{"Message":"Model is not ready yet."}'
        if fail == "huge503":
            return aws_error(503, "ServiceUnavailable", "S" * 700000)
        if validation is not None:
            return aws_error(400, "ValidationError", validation)
        target = hdrs.get("x-amzn-sagemaker-target-variant")
        if target is not None and target not in ("AllTraffic", "Blue", "Green"):
            return aws_error(400, "ValidationError", "Variant %s not found for endpoint %s."
                             % (target, SM_NAME))  # the fake's words
        ctype, accept = hdrs.get("content-type"), hdrs.get("accept")
        rows = parse_rows(ctype, body)
        if any(r and repr(r[0]) == repr(float(POISON)) for r in rows):
            om = "row with feature %s refused by the model" % POISON
            msg = ('Received client error (400) from primary with message "%s". See https://'
                   'us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#'
                   'logEventViewer:group=/aws/sagemaker/Endpoints/%s in account 123456789012 '
                   'for more information.' % (om, SM_NAME))
            return 424, [("Content-Type", "application/json"),
                         ("x-amzn-ErrorType", "ModelError")], \
                json.dumps({"ErrorCode": "CLIENT_ERROR_FROM_MODEL",
                            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:"
                                            "/aws/sagemaker/Endpoints/" + SM_NAME,
                            "Message": msg, "OriginalMessage": om,
                            "OriginalStatusCode": 400}).encode()
        preds = [pred(r, accept) for r in rows]
        if fail == "short":  # one prediction missing
            preds = preds[:-1]
        if fail == "wrongtype":
            accept = "application/jsonlines" if accept != "application/jsonlines" else "text/csv"
        if fail == "plaintype":  # a type the gateway cannot read
            accept = "text/plain"
        if fail == "badjson":  # labelled JSON, but lines
            accept = "application/json"
        if fail == "jsonstr":  # JSON that is no CSV line of numbers
            accept = "application/json"
            preds = ['"class-%d"' % i for i in range(len(preds))]
        if accept == "application/json" and fail != "badjson":
            out = '{"predictions":[%s]}' % ",".join(preds)
        else:
            out = "".join(p + "\n" for p in preds)
        # the variant asked for, else the one the traffic split picked
        variant = hdrs.get("x-amzn-sagemaker-target-variant") or variant
        h = [("Content-Type", accept), ("x-Amzn-Invoked-Production-Variant", variant),
             ("x-amzn-RequestId", "11111111-1111-1111-1111-111111111111")]
        if hdrs.get("x-amzn-sagemaker-custom-attributes") is not None:
            h.append(("X-Amzn-SageMaker-Custom-Attributes",  # 1024 at most, as SageMaker
                      ("runtime-saw=" + hdrs["x-amzn-sagemaker-custom-attributes"])[:1024]))
        return 200, h, out.encode()


# ---- the fake STS and container-credentials endpoint ------------------------------

class Issuer:
    """Hands out a new key id at each fetch, valid for <lifetime> seconds;
    records what each fetch carried. <error> set: answers that instead."""

    def __init__(self, kind, lifetime=3600, auth_token=None):
        self.kind = kind
        self.lifetime = lifetime
        self.auth_token = auth_token
        self.error = None
        self.slow = 0.0  # seconds every fetch after the first takes
        self.lock = threading.Lock()
        self.fetches = []
        self.issued = []  # (ak, exp)
        self.server = Server(self.route)
        self.url = self.server.url

    def issue(self):
        with self.lock:
            n = len(self.issued) + 1
            ak = "ASIA%s%04d" % ("STS" if self.kind == "sts" else "ECS", n)
            sk = secrets.token_urlsafe(30)
            tok = "%s-session-token-%d-%s" % (self.kind, n, secrets.token_hex(64))
            exp = int(time.time()) + self.lifetime
            self.issued.append((ak, exp))
        KEYS.add(ak, sk, tok, exp)
        return ak, sk, tok, exp

    def route(self, method, path, hdrs, body):
        with self.lock:
            self.fetches.append({"method": method, "path": path, "hdrs": hdrs,
                                 "form": urllib.parse.parse_qs(body.decode()) if body else {}})
            error = self.error
            slow = self.slow if len(self.fetches) > 1 else 0.0
        if slow:
            time.sleep(slow)
        if self.kind == "sts":
            if error is not None:
                return 400, [("Content-Type", "text/xml")], (
                    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                    '<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>'
                    '<RequestId>22222222-2222-2222-2222-222222222222</RequestId></ErrorResponse>'
                    % error).encode()
            ak, sk, tok, exp = self.issue()
            return 200, [("Content-Type", "text/xml")], (
                '<AssumeRoleWithWebIdentityResponse '
                'xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                '<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>'
                'system:serviceaccount:default:infergate</SubjectFromWebIdentityToken>'
                '<Audience>sts.amazonaws.com</Audience>'
                '<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gw/s</Arn>'
                '<AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser><Credentials>'
                '<SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey>'
                '<Expiration>%s</Expiration><AccessKeyId>%s</AccessKeyId></Credentials>'
                '<Provider>oidc.eks.us-east-1.amazonaws.com</Provider>'
                '</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>'
                '33333333-3333-3333-3333-333333333333</RequestId></ResponseMetadata>'
                '</AssumeRoleWithWebIdentityResponse>' % (tok, sk, iso8601(exp), ak)).encode()
        if error is not None:
            return 500, [("Content-Type", "application/json")], \
                json.dumps({"code": error[0], "message": error[1]}).encode()
        if path != "/creds" or hdrs.get("authorization") != self.auth_token:
            return 401, [("Content-Type", "application/json")], \
                b'{"code":"Unauthorized","message":"bad or missing Authorization token"}'
        ak, sk, tok, exp = self.issue()
        return 200, [("Content-Type", "application/json")], json.dumps(
            {"AccessKeyId": ak, "SecretAccessKey": sk, "Token": tok,
             "Expiration": iso8601(exp), "RoleArn": "arn:aws:iam::123456789012:role/gw"}).encode()


# ---- gateways and clients ------------------------------------------------------

@contextlib.contextmanager
def aws_env(**env):
    """os.environ with every AWS_* variable cleared, HOME a fresh directory,
    and <env>; restored afterwards."""
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ["HOME"] = tempfile.mkdtemp(prefix="home-", dir=tmp)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sm_gateway(rt, **ep):
    conf = {"model": "sagemaker://%s/%s" % (REGION, SM_NAME), "endpoint_url": rt.url,
            "content_type": "text/csv", "accept": "text/csv", "max_delay_us": "30000",
            "retry_base_ms": "10", "retry_max_ms": "40"}
    conf.update(ep)
    return Gateway({"sm": conf})


def post(gw, body, headers=None, endpoint="sm", timeout=30):
    """-> (status, lower-cased headers, body text) over HTTP/1.1."""
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
    h = {"Content-Type": "text/csv"}
    h.update(headers or {})
    c.request("POST", "/endpoints/%s/invocations" % endpoint, body=body.encode(), headers=h)
    r = c.getresponse()
    out = r.read().decode()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, out


def parallel(fn, n):
    out = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # a client error is a result to assert on
            out[i] = ("EXC", {}, repr(e))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def rows_of(i, k):
    """Request i's k rows: distinct small integers, so every sum is exact."""
    return [[i * 10 + j, j + 1, 0.5] for j in range(k)]


def csv_of(rows):
    return "".join(",".join(repr(float(v)) if isinstance(v, float) else str(v) for v in r) + "\n"
                   for r in rows)


def csv_answer(rows):
    return "".join(repr(float(sum(r))) + "\n" for r in rows)


def check_calls(calls, ak, token, what):
    """Every call verified, went to the endpoint's path and was signed with
    <ak> (and <token>)."""
    check_eq([c["bad"] for c in calls if c["bad"]], [], what + ": every call's signature verifies")
    check_eq(sorted({c["ak"] for c in calls}), [ak], what + ": every call signed with " + ak)
    check_eq(sorted({c["token"] or "" for c in calls}), [token or ""],
             what + ": X-Amz-Security-Token " + ("the session token" if token else "absent"))
    check_eq(sorted({c["path"] for c in calls}), [SM_PATH], what + ": calls to " + SM_PATH)


def wait_ready(gw, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            if time.time() > deadline:
                return e.code, e.read().decode()
        time.sleep(0.05)


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# ---- 0. the verifier rejects what it must ---------------------------------------------
# A request signed by botocore itself verifies; the same with one byte of
# the body, a signed header or the secret changed does not.
KEYS.add("AKIASELFCHECK", "self/secret", "self-token")


def botocore_signed(body=b"1,2\n", sk="self/secret"):
    req = AWSRequest(method="POST", url="http://127.0.0.1:9" + SM_PATH, data=body,
                     headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    SigV4Auth(Credentials("AKIASELFCHECK", sk, "self-token"), "sagemaker", REGION).add_auth(req)
    hdrs = {k.lower(): v for k, v in req.headers.items()}
    hdrs["host"] = "127.0.0.1:9"
    return hdrs


h0 = botocore_signed()
check_eq(verify_sigv4("POST", SM_PATH, h0, b"1,2\n", time.time()), None,
         "verifier: botocore's own signature verifies")
check(verify_sigv4("POST", SM_PATH, h0, b"1,3\n", time.time()) is not None,
      "verifier: a changed body does not")
check(verify_sigv4("POST", SM_PATH, dict(h0, accept="application/json"), b"1,2\n",
                   time.time()) is not None, "verifier: a changed signed header does not")
check(verify_sigv4("POST", SM_PATH, botocore_signed(sk="other"), b"1,2\n", time.time())
      is not None, "verifier: another secret does not")
check(verify_sigv4("POST", SM_PATH, {k: v for k, v in h0.items() if k != "x-amz-security-token"},
                   b"1,2\n", time.time()) is not None, "verifier: no session token does not")
check(verify_sigv4("POST", "/endpoints/other/invocations", h0, b"1,2\n", time.time())
      is not None, "verifier: another path does not")

rt = Runtime()

# ---- 1. environment credentials ---------------------------------------------------
for tok in (None, "env-session-token-" + "x" * 300):
    ak = "AKIAENVTEST%s" % ("TOKEN" if tok else "PLAIN")
    sk = "env/secret+" + secrets.token_hex(16)
    KEYS.add(ak, sk, tok)
    env = {"AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}
    if tok:
        env["AWS_SESSION_TOKEN"] = tok
    what = "environment credentials%s" % (" with a session token" if tok else "")
    rt.reset()
    with aws_env(**env), sm_gateway(rt) as gw:
        check_eq(wait_ready(gw), (200, '{"status":"ready"}'), what + ": /readyz")
        n = 24
        reqs = [rows_of(i, 1 + i % 3) for i in range(n)]
        res = parallel(lambda i: post(gw, csv_of(reqs[i]), {"Accept": "text/csv"}), n)
        check_eq([r[0] for r in res], [200] * n, what + ": every request 200")
        check_eq([r[2] for r in res], [csv_answer(q) for q in reqs],
                 what + ": each client's exact answer")
        check_eq({(r[1].get("content-type"), r[1].get("x-amzn-invoked-production-variant"))
                  for r in res}, {("text/csv", "AllTraffic")},
                 what + ": Content-Type and x-Amzn-Invoked-Production-Variant")
        calls = rt.snapshot()
        check_calls(calls, ak, tok, what)
        check(len(calls) < n, "%s: rows of concurrent requests packed (%d calls for %d requests)"
              % (what, len(calls), n))
        check_eq(sorted(sum((c["body"].decode().splitlines() for c in calls), [])),
                 sorted(csv_of(sum(reqs, [])).splitlines()),
                 what + ": every row sent once, as its bytes")
        check_eq({(c["ctype"], c["accept"]) for c in calls}, {("text/csv", "text/csv")},
                 what + ": the calls' Content-Type and Accept")
        check_eq({tuple(c["signed"]) for c in calls},
                 {("accept", "content-type", "host", "x-amz-date") +
                  (("x-amz-security-token",) if tok else ())}, what + ": SignedHeaders")
        if tok is None:
            # A transform stream through the SageMaker upstream: 3000 rows, every
            # one's exact answer in order, in signed calls of many rows.
            rt.reset()
            srows = [[i, i % 7, 0.5] for i in range(3000)]
            sfile = os.path.join(tmp, "stream.csv")
            with open(sfile, "w") as f:
                f.write(csv_of(srows))
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-T", sfile,
                                "-H", "Content-Type: text/csv", "-H", "Accept: text/csv",
                                gw.url + "/transform/sm"], capture_output=True, timeout=60)
            got, want = p.stdout.decode().splitlines(), csv_answer(srows).splitlines()
            # row 667 (index 666) is the runtime's poison row: refused alone, the
            # calls that held it split down to it
            want[666] = ('error,667,ModelError,"Row 667: row with feature 666 refused by '
                         'the model"')
            bad = [i for i in range(min(len(got), len(want))) if got[i] != want[i]][:3]
            check_eq((p.returncode, len(got), bad, [(got[i], want[i]) for i in bad]),
                     (0, 3000, [], []),
                     what + ": a 3000-row transform stream, each row's exact answer in order")
            calls = rt.snapshot()
            check_calls(calls, ak, None, what + " (stream)")
            check(len(calls) < 300, "%s: the stream's rows went in %d signed calls"
                  % (what, len(calls)))
            check_eq(sum(c["body"] == csv_of([srows[666]]).encode() for c in calls), 1,
                     what + ": the poison row was asked alone at the end of the halving")
            # JSON in and out: the rows re-wrapped, the predictions under "predictions".
            rt.reset()
            st, h, body = post(gw, '{"instances":[[1,2],[3,4.5]]}',
                               {"Content-Type": "application/json", "Accept": "application/json"})
            check_eq((st, h.get("content-type"), body),
                     (200, "application/json", '{"predictions":[{"score":3.0},{"score":7.5}]}'),
                     what + ": JSON request, exact answer")
            calls = rt.snapshot()
            check_eq([(c["body"], c["ctype"], c["accept"]) for c in calls],
                     [(b'{"instances":[[1,2],[3,4.5]]}', "application/json", "application/json")],
                     what + ": JSON rows re-wrapped in one call")
            check_calls(calls, ak, None, what + " (JSON)")

            # boto3 and the AWS CLI as the gateway's clients: the exact answer; the
            # calls upstream carry the gateway's key, not the client's.
            import boto3
            rt.reset()
            cl = boto3.client("sagemaker-runtime", endpoint_url=gw.url, region_name=REGION,
                              aws_access_key_id="client-key", aws_secret_access_key="x")
            r = cl.invoke_endpoint(EndpointName="sm", ContentType="text/csv", Accept="text/csv",
                                   Body=b"1,2,3\n4,5,6.25\n")
            check_eq((r["Body"].read().decode(), r["ContentType"], r["InvokedProductionVariant"]),
                     ("6.0\n15.25\n", "text/csv", "AllTraffic"), "boto3 through the gateway: exact")
            out = os.path.join(tmp, "cli.out")
            body_path = os.path.join(tmp, "cli.csv")
            with open(body_path, "w") as f:
                f.write("7,8\n-1,0.5\n")
            cli_env = {"PATH": os.environ["PATH"], "HOME": tempfile.mkdtemp(dir=tmp),
                       "AWS_ACCESS_KEY_ID": "cli-key", "AWS_SECRET_ACCESS_KEY": "x",
                       "AWS_DEFAULT_REGION": REGION}
            p = subprocess.run([AWS, "sagemaker-runtime", "invoke-endpoint",
                                "--endpoint-url", gw.url, "--endpoint-name", "sm",
                                "--content-type", "text/csv", "--accept", "text/csv",
                                "--body", "fileb://" + body_path, out],
                               capture_output=True, timeout=60, env=cli_env)
            check_eq((p.returncode, json.loads(p.stdout or b"{}")),
                     (0, {"ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}),
                     "aws sagemaker-runtime invoke-endpoint through the gateway: output; stderr "
                     + p.stderr.decode()[-300:])
            with open(out) as f:
                check_eq(f.read(), "15.0\n-0.5\n", "aws CLI through the gateway: exact answer")
            check_calls(rt.snapshot(), ak, None, "boto3 and CLI clients")

# ---- 2. a profile in the shared files ----------------------------------------------
cred_file = os.path.join(tmp, "credentials")
with open(cred_file, "w") as f:
    f.write("[default]\naws_access_key_id = AKIADEFAULTPROFILE\naws_secret_access_key = nope\n\n"
            "[test]\naws_access_key_id = AKIATESTPROFILE\naws_secret_access_key = test/secret\n")
KEYS.add("AKIADEFAULTPROFILE", "nope")
KEYS.add("AKIATESTPROFILE", "test/secret")
config_file = os.path.join(tmp, "config")
with open(config_file, "w") as f:
    f.write("[default]\nregion = us-west-2\n\n[profile x]\nregion = us-east-1\n"
            "aws_access_key_id = AKIACONFIGX\naws_secret_access_key = config/x/secret\n"
            "aws_session_token = config-x-token\n")
KEYS.add("AKIACONFIGX", "config/x/secret", "config-x-token")
for env, ak, tok, what in (
        ({"AWS_SHARED_CREDENTIALS_FILE": cred_file, "AWS_PROFILE": "test"}, "AKIATESTPROFILE", None,
         "profile test in AWS_SHARED_CREDENTIALS_FILE"),
        ({"AWS_CONFIG_FILE": config_file, "AWS_SHARED_CREDENTIALS_FILE": cred_file,
          "AWS_PROFILE": "x"}, "AKIACONFIGX", "config-x-token", "[profile x] in AWS_CONFIG_FILE")):
    rt.reset()
    with aws_env(**env), sm_gateway(rt) as gw:
        reqs = [rows_of(i, 2) for i in range(4)]
        res = parallel(lambda i: post(gw, csv_of(reqs[i])), 4)
        check_eq([(r[0], r[2]) for r in res], [(200, csv_answer(q)) for q in reqs],
                 what + ": exact answers")
        check_calls(rt.snapshot(), ak, tok, what)

# ---- 3. web identity against the fake STS ---------------------------------------------
sts = Issuer("sts", lifetime=3600)
token_file = os.path.join(tmp, "web-identity-token")
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"
with open(token_file, "w") as f:
    f.write(WEB_TOKEN + "\n")  # the newline is not part of the token
ROLE = "arn:aws:iam::123456789012:role/infergate-gateway"
rt.reset()
with aws_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=ROLE,
             AWS_ROLE_SESSION_NAME="gw-test", AWS_ENDPOINT_URL_STS=sts.url), sm_gateway(rt) as gw:
    reqs = [rows_of(i, 3) for i in range(6)]
    res = parallel(lambda i: post(gw, csv_of(reqs[i])), 6)
    check_eq([(r[0], r[2]) for r in res], [(200, csv_answer(q)) for q in reqs],
             "web identity: exact answers (the first calls waited for STS)")
    check_eq(len(sts.issued), 1, "web identity: one STS fetch")
    f0 = sts.fetches[0] if sts.fetches else {"form": {}, "hdrs": {}, "method": None}
    check_eq((f0["method"], f0["hdrs"].get("content-type"),
              {k: v for k, v in f0["form"].items()}),
             ("POST", "application/x-www-form-urlencoded",
              {"Action": ["AssumeRoleWithWebIdentity"], "Version": ["2011-06-15"],
               "RoleArn": [ROLE], "RoleSessionName": ["gw-test"],
               "WebIdentityToken": [WEB_TOKEN]}),
             "web identity: STS saw the token file's content, the role and the session name")
    if sts.issued:
        check_calls(rt.snapshot(), sts.issued[0][0], KEYS.get(sts.issued[0][0])[1],
                    "web identity")

# ---- 4. container credentials ------------------------------------------------------
ecs = Issuer("container", lifetime=3600, auth_token="Bearer ecs-auth-" + secrets.token_hex(8))
rt.reset()
with aws_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs.url + "/creds",
             AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs.auth_token), sm_gateway(rt) as gw:
    reqs = [rows_of(i, 1) for i in range(5)]
    res = parallel(lambda i: post(gw, csv_of(reqs[i])), 5)
    check_eq([(r[0], r[2]) for r in res], [(200, csv_answer(q)) for q in reqs],
             "container credentials: exact answers")
    check_eq([(f["method"], f["path"], f["hdrs"].get("authorization")) for f in ecs.fetches],
             [("GET", "/creds", ecs.auth_token)],
             "container credentials: one fetch, with the authorization token")
    if ecs.issued:
        check_calls(rt.snapshot(), ecs.issued[0][0], KEYS.get(ecs.issued[0][0])[1],
                    "container credentials")

# ---- 5. refresh across expiries ------------------------------------------------------
sts5 = Issuer("sts", lifetime=4)
sts5.slow = 0.8  # each refresh takes 0.8 s: requests must not wait for it
token_file5 = os.path.join(tmp, "web-identity-token-5")
with open(token_file5, "w") as f:
    f.write("first-token")
rt.reset()
with aws_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file5, AWS_ROLE_ARN=ROLE,
             AWS_ENDPOINT_URL_STS=sts5.url), sm_gateway(rt, max_delay_us="1000") as gw:
    results = []
    slowest = 0.0
    t_end = time.time() + 10
    i = 0
    while time.time() < t_end:
        t0 = time.time()
        q = rows_of(i, 1)
        results.append((post(gw, csv_of(q)), q))
        slowest = max(slowest, time.time() - t0)
        i += 1
        if i == 50:  # the token is rotated, as the kubelet does: the next fetch reads it
            with open(token_file5 + ".new", "w") as f:
                f.write("second-token")
            os.rename(token_file5 + ".new", token_file5)
        time.sleep(max(0.0, 0.1 - (time.time() - t0)))
    bad = [(r[0], r[2][:200]) for r, q in results if (r[0], r[2]) != (200, csv_answer(q))]
    check_eq(bad, [], "refresh: every one of %d requests over 10 s answered exactly" % len(results))
    calls = rt.snapshot()
    check_eq([c["bad"] for c in calls if c["bad"]], [],
             "refresh: every call verifies, none signed with expired credentials")
    late = [(c["ak"], c["amz_date"], iso8601(KEYS.get(c["ak"])[2])) for c in calls
            if c["ak"] and KEYS.get(c["ak"]) and c["at"] >= KEYS.get(c["ak"])[2]]
    check_eq(late, [], "refresh: no call arrived after its key's expiration")
    used = sorted({c["ak"] for c in calls})
    check(len(used) >= 2, "refresh: %d distinct key ids used over 10 s of 4 s credentials (%s)"
          % (len(used), ", ".join(used)))
    check(len(sts5.issued) >= 3, "refresh: STS asked %d times in 10 s" % len(sts5.issued))
    check(slowest < 0.5, "refresh: no request waited for a 0.8 s refresh (slowest %.3f s)"
          % slowest)
    toks = [f["form"].get("WebIdentityToken", [""])[0] for f in sts5.fetches]
    check(toks[:1] == ["first-token"] and toks[-1:] == ["second-token"] and
          toks == sorted(toks), "refresh: the rotated token file is read again (%s)" % toks)

# Credentials that expire while their refresh fails: requests fail naming it,
# no call is signed with the expired key, and the next good refresh heals.
ecs5 = Issuer("container", lifetime=3, auth_token="ecs-expiry-token")
rt.reset()
with aws_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs5.url + "/creds",
             AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs5.auth_token), \
        sm_gateway(rt, max_delay_us="1000") as gw:
    q = rows_of(5, 2)
    check_eq(post(gw, csv_of(q))[::2], (200, csv_answer(q)), "expiry: first request answered")
    ecs5.error = ("InternalError", "credentials agent down")
    ak0, exp0 = ecs5.issued[0] if ecs5.issued else ("(none issued)", int(time.time()))
    time.sleep(max(0.0, exp0 - time.time()) + 0.3)
    why = ("AWS credentials from container expired at %s; their refresh failed (the gateway's "
           "log says why)" % iso8601(exp0))
    st, h, body = post(gw, csv_of(q))
    check_eq((st, h.get("x-amzn-errortype"), body),
             (500, "InternalFailure", json.dumps(
                 {"message": "Row 1: The gateway has no AWS credentials to call SageMaker endpoint "
                             "%s (%s): %s" % (SM_NAME, REGION, why)}, separators=(",", ":"))),
             "expiry: past the expiration with no refresh, InternalFailure naming both")
    reason = "SageMaker endpoint %s (%s): %s" % (SM_NAME, REGION, why)
    check_eq(readyz(gw), (503, json.dumps({"status": "not ready", "reason": reason},
                                          separators=(",", ":"))),
             "expiry: /readyz 503 naming the expiry and the failed refresh")
    check("aws credentials from container: container credentials from %s: HTTP 500 "
          "InternalError: credentials agent down" % ecs5.url in gw.stderr(),
          "expiry: the refresh's error is in the gateway's log")
    ecs5.error = None
    deadline = time.time() + 10
    got = post(gw, csv_of(q))
    while got[0] != 200 and time.time() < deadline:
        time.sleep(0.2)
        got = post(gw, csv_of(q))
    check_eq(got[::2], (200, csv_answer(q)), "expiry: answered again once a refresh succeeds")
    calls = rt.snapshot()
    check_eq([c["bad"] for c in calls if c["bad"]], [], "expiry: every call verifies, none expired")
    check_eq([c["ak"] for c in calls], [ak0, ecs5.issued[-1][0]],
             "expiry: one call with the first key, one with the fresh one, none in between")

# ---- 6. failures ---------------------------------------------------------------------
KEYS.add("AKIAFAILURES", "fail/secret")
with aws_env(AWS_ACCESS_KEY_ID="AKIAFAILURES", AWS_SECRET_ACCESS_KEY="fail/secret"), \
        sm_gateway(rt) as gw:
    # Throttled, then 503, then answered: retried, the client never sees them.
    rt.reset()
    rt.script = ["throttle", "503"]
    q = rows_of(7, 3)
    st, h, body = post(gw, csv_of(q))
    check_eq((st, body), (200, csv_answer(q)),
             "ThrottlingException then 503: retried, exact answer")
    calls = rt.snapshot()
    check_eq([(c["status"], c["body"]) for c in calls],
             [(400, csv_of(q).encode()), (503, csv_of(q).encode()), (200, csv_of(q).encode())],
             "ThrottlingException then 503: three calls of the same rows")
    check_calls(calls, "AKIAFAILURES", None, "retries")

    # A poison row among concurrent one-row requests: only its request fails.
    rt.reset()
    n, bad_i = 32, 13
    reqs = [[[int(POISON) if i == bad_i else i + 1, 2]] for i in range(n)]
    res = parallel(lambda i: post(gw, csv_of(reqs[i])), n)
    om = "row with feature %s refused by the model" % POISON
    want_bad = (424, "ModelError", json.dumps(
        {"ErrorCode": "CLIENT_ERROR_FROM_MODEL",
         "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:"
                         "/aws/sagemaker/Endpoints/sm",
         "Message": 'Received client error (400) from AllTraffic with message "%s".' % om,
         "OriginalMessage": om, "OriginalStatusCode": 400}, separators=(",", ":")))
    check_eq([(r[0], r[1].get("x-amzn-errortype"), r[2]) for r in res],
             [want_bad if i == bad_i else (200, None, csv_answer(reqs[i])) for i in range(n)],
             "poison row: only its request gets 424 ModelError (OriginalStatusCode 400), the "
             "others 200 exact")
    calls = rt.snapshot()
    check_calls(calls, "AKIAFAILURES", None, "bisection")
    refused = [len(c["body"].decode().splitlines()) for c in calls if c["status"] == 424]
    first = max(refused) if refused else 0
    check(refused and min(refused) == 1 and len(refused) <= first.bit_length() + 1,
          "poison row: the refused calls halve down to the row alone (%s rows)" % refused)
    splits = len([k for k in refused if k > 1])
    check(2 * splits <= 2 * max(1, first - 1).bit_length() + 1,
          "poison row: %d extra calls for a batch of %d rows (at most 2*log2(batch)+1)"
          % (2 * splits, first))
    answered = sorted(sum((c["body"].decode().splitlines() for c in calls if c["status"] == 200),
                          []))
    others = sum((reqs[i] for i in range(n) if i != bad_i), [])
    check_eq(answered, sorted(csv_of(others).splitlines()),
             "poison row: every other row answered in exactly one call")

    # ValidationError: SageMaker refuses the call itself; the clients get
    # InternalFailure naming its refusal, but not the gateway's AWS account
    # (ARNs and "of account N" name it): zeros, as in a LogStreamArn.
    rt.reset()
    rt.validation = "1 validation error detected: Value at 'endpointName' failed to satisfy " \
                    "constraint (arn:aws:sagemaker:us-east-1:123456789012:endpoint/x, account " \
                    "123456789012, request 1234567890123)"
    st, h, body = post(gw, "1,2\n")
    check_eq((st, h.get("x-amzn-errortype"), body),
             (500, "InternalFailure", json.dumps(
                 {"message": "Row 1: SageMaker refused the call (400 ValidationError): "
                             + json.dumps({"message": rt.validation.replace(
                                 "123456789012:", "000000000000:").replace(
                                 "123456789012,", "000000000000,")})},
                 separators=(",", ":"))),
             "ValidationError from SageMaker: InternalFailure naming the refusal, the account "
             "id as zeros (a 13-digit number kept)")
    check_eq(len(rt.snapshot()), 1, "ValidationError: not retried")
    rt.reset()

# A signature SageMaker refuses: its message quotes the canonical string,
# x-amz-security-token's value included; the session token must reach
# neither the client's error nor the log.
LEAK_TOKEN = "IQoJb3JpZ2lu" + secrets.token_hex(8) + "/+/" + secrets.token_hex(8)  # all in 512 B
KEYS.add("ASIALEAKCHECK", "leak/secret", LEAK_TOKEN)
with aws_env(AWS_ACCESS_KEY_ID="ASIALEAKCHECK", AWS_SECRET_ACCESS_KEY="leak/secret",
             AWS_SESSION_TOKEN=LEAK_TOKEN), sm_gateway(rt, retry_max="1") as gw:
    rt.reset()
    rt.script = ["sigmismatch"]
    st, h, body = post(gw, "1,2\n")
    log = gw.stderr()
    check_eq((st, h.get("x-amzn-errortype"), "SageMaker refused the call (403 "
              "InvalidSignatureException)" in body, "x-amz-security-token:(redacted)" in body),
             (500, "InternalFailure", True, True),
             "signature refused: InternalFailure naming the refusal, the token line redacted")
    parts = [x for x in LEAK_TOKEN.split("/") if len(x) > 1]
    check_eq([(w, [x in t for x in parts]) for w, t in (("body", body), ("log", log))],
             [("body", [False, False]), ("log", [False, False])],
             "signature refused: no part of the session token in the error body or the log")
    rt.reset()

# Failures that outlast the retries (retry_max 2: three calls each): the
# client gets what SageMaker said, in its own type.
with aws_env(AWS_ACCESS_KEY_ID="AKIAFAILURES", AWS_SECRET_ACCESS_KEY="fail/secret"), \
        sm_gateway(rt, retry_max="2", breaker_failures="100") as gw:
    label = "SageMaker endpoint %s (%s)" % (SM_NAME, REGION)
    q = rows_of(9, 2)
    cases = [
        (["throttle"] * 3, (400, "ThrottlingException", json.dumps(
            {"message": "Row 1: The model backend (%s) is throttling calls (400 "
                        "ThrottlingException) and did not take this one after 2 retries; retry "
                        "later." % label}, separators=(",", ":")))),
        (["503"] * 3, (503, "ServiceUnavailable", json.dumps(
            {"message": "Row 1: SageMaker answered 503 ServiceUnavailable: " +
                        json.dumps({"message": "The service is unavailable."})},
            separators=(",", ":")))),
        (["model500"], (200, None, csv_answer(q))),
        (["model500"] * 3, (424, "ModelError", json.dumps(
            {"ErrorCode": "SERVER_ERROR_FROM_MODEL",
             "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:"
                             "/aws/sagemaker/Endpoints/sm",
             "Message": 'Received server error (500) from AllTraffic with message '
                        '"model crashed".',
             "OriginalMessage": "model crashed", "OriginalStatusCode": 500},
            separators=(",", ":")))),
    ]
    cases += [
        (["short"], (500, "InternalFailure", json.dumps(
            {"message": "Row 1: The model returned 1 predictions for 2 rows; these rows were not "
                        "answered."}, separators=(",", ":")))),
        # an answer in another type than the one asked for is read as its
        # Content-Type says and converted (a model that answers in its own
        # type whatever the Accept), when the gateway can read that type
        (["wrongtype"], (200, None, csv_answer(q))),
        (["plaintype"], (500, "InternalFailure", json.dumps(
            {"message": "Row 1: The model answered Content-Type text/plain; text/csv "
                        "was asked for."}, separators=(",", ":")))),
        (["jsonstr"], (500, "InternalFailure", json.dumps(
            {"message": "Row 1: The model answered Content-Type application/json, not the "
                        "text/csv asked for, and its answer does not convert: the model's answer "
                        "'\"class-0\"' cannot be written as text/csv: it is not a number or "
                        "an array of numbers."},
            separators=(",", ":")))),
        (["badjson"], (500, "InternalFailure", json.dumps(
            {"message": "Row 1: The model's answer is not valid application/json."},
            separators=(",", ":")))),
    ]
    cases += [
        # SageMaker's 429 ModelNotReadyException: retried, then its own
        # (modeled) type and status, not a ThrottlingException
        (["notready"] * 3, (429, "ModelNotReadyException", json.dumps(
            {"message": "Row 1: SageMaker answered 429 ModelNotReadyException: "
                        '{"Message":"Model is not ready yet."}'}, separators=(",", ":")))),
    ]
    for script, want in cases:
        rt.reset()
        rt.script = list(script)
        st, h, body = post(gw, csv_of(q))
        check_eq((st, h.get("x-amzn-errortype"), body), want,
                 "%s x%d with 2 retries: the client's answer" % (script[0], len(script)))
        calls = rt.snapshot()
        retried = script[0] in ("throttle", "503", "model500", "notready")
        check_eq(len(calls), min(len(script) + 1, 3) if retried else 1,
                 "%s x%d: calls made (retries included)" % (script[0], len(script)))
        check_eq([c["bad"] for c in calls if c["bad"]], [],
                 "%s x%d: every retry re-signed and verified" % (script[0], len(script)))
    # An error body longer than the answer's cap (two rows: 576 KiB) is cut,
    # not taken for an answer too large: the model's 4xx is still a
    # ModelError with its status (OriginalStatusCode comes after the long
    # message), a 503 still retried and SageMaker's own.
    for script, want, ncalls in (
            (["hugemodel400"], (424, "ModelError", 400, "E" * 1024), 1),
            (["huge503"] * 3, (503, "ServiceUnavailable", None, None), 3)):
        rt.reset()
        rt.script = list(script)
        st, h, body = post(gw, csv_of(q))
        o = json.loads(body)
        check_eq((st, h.get("x-amzn-errortype"), o.get("OriginalStatusCode"),
                  o.get("OriginalMessage"), len(rt.snapshot())), want + (ncalls,),
                 "%s: an error body over the cap is cut, still the model's error" % script[0])
    rt.reset()

# SageMaker unreachable: retried, then ServiceUnavailable naming it.
closed_url = "http://127.0.0.1:%d" % free_port()  # nothing listens there
with aws_env(AWS_ACCESS_KEY_ID="AKIAFAILURES", AWS_SECRET_ACCESS_KEY="fail/secret"), \
        Gateway({"sm": {"model": "sagemaker://%s/%s" % (REGION, SM_NAME),
                        "endpoint_url": closed_url, "content_type": "text/csv",
                        "retry_max": "1", "retry_base_ms": "5"}}) as gw:
    st, h, body = post(gw, "1,2\n")
    check_eq((st, h.get("x-amzn-errortype"), body),
             (503, "ServiceUnavailable", json.dumps(
                 {"message": "Row 1: The model backend (SageMaker endpoint %s (%s)) cannot be "
                             "reached: Couldn't connect to server." % (SM_NAME, REGION)},
                 separators=(",", ":"))), "SageMaker unreachable: ServiceUnavailable naming it")

# ---- 7. no credentials; an STS that refuses ---------------------------------------------
with aws_env():
    conf = os.path.join(tmp, "nocreds.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:1\n[endpoint sm]\nmodel = sagemaker://%s/%s\n"
                "endpoint_url = %s\n" % (REGION, SM_NAME, rt.url))
    p = subprocess.run([BIN, "--config", conf, "--check-config"], capture_output=True, timeout=30,
                       cwd=ROOT)
    check_eq((p.returncode, p.stdout.decode(), p.stderr.decode()),
             (2, "", "infergate: %s:3: model: sagemaker://%s/%s: no AWS credentials: set "
              "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, AWS_WEB_IDENTITY_TOKEN_FILE+"
              "AWS_ROLE_ARN or AWS_CONTAINER_CREDENTIALS_FULL_URI\n" % (conf, REGION, SM_NAME)),
             "no credentials: --check-config exits 2 naming the file, line, key and the cause")
with aws_env(AWS_PROFILE="missing", AWS_SHARED_CREDENTIALS_FILE=cred_file,
             AWS_CONFIG_FILE=config_file):
    p = subprocess.run([BIN, "--config", conf, "--check-config"], capture_output=True, timeout=30,
                       cwd=ROOT)
    check_eq((p.returncode, p.stdout.decode(), p.stderr.decode()),
             (2, "", "infergate: %s:3: model: sagemaker://%s/%s: profile 'missing' not found "
              "in %s, %s\n" % (conf, REGION, SM_NAME, cred_file, config_file)),
             "AWS_PROFILE naming no profile: --check-config exits 2 naming it")

sts7 = Issuer("sts")
sts7.error = ("InvalidIdentityToken", "Couldn't retrieve verification key from your identity "
              "provider")
rt.reset()
with aws_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=ROLE,
             AWS_ENDPOINT_URL_STS=sts7.url), sm_gateway(rt) as gw:
    sts_err = ("STS AssumeRoleWithWebIdentity from %s: HTTP 400 InvalidIdentityToken: "
               "Couldn't retrieve verification key from your identity provider" % sts7.url)
    deadline = time.time() + 10
    st = readyz(gw)
    while "their fetch failed" not in st[1] and time.time() < deadline:
        time.sleep(0.05)
        st = readyz(gw)
    public = "AWS credentials from web identity: their fetch failed (the gateway's log says why)"
    check_eq(st, (503, json.dumps({"status": "not ready", "reason":
                                   "SageMaker endpoint %s (%s): %s" % (SM_NAME, REGION, public)},
                                  separators=(",", ":"))),
             "STS refuses: /readyz 503 saying the fetch failed, not the STS's words")
    st, h, body = post(gw, "1,2\n")
    check_eq((st, h.get("x-amzn-errortype"), body),
             (500, "InternalFailure", json.dumps(
                 {"message": "Row 1: The gateway has no AWS credentials to call SageMaker "
                             "endpoint %s (%s): %s" % (SM_NAME, REGION, public)},
                 separators=(",", ":"))),
             "STS refuses: the request gets InternalFailure, no STS host, code or text")
    check("aws credentials from web identity: %s" % sts_err in gw.stderr(),
          "STS refuses: the STS error is in the gateway's log")
    check_eq(len(rt.snapshot()), 0, "STS refuses: no call reached SageMaker unsigned")

# ---- 8. pass-through of CustomAttributes, InferenceId, TargetVariant -------------------
KEYS.add("AKIAPASSTHROUGH", "pass/secret")
rt.reset()
with aws_env(AWS_ACCESS_KEY_ID="AKIAPASSTHROUGH", AWS_SECRET_ACCESS_KEY="pass/secret"), \
        sm_gateway(rt) as gw:
    special = {"X-Amzn-SageMaker-Custom-Attributes": "trace=abc-123,tenant=7",
               "X-Amzn-SageMaker-Inference-Id": "inference-0001",
               "X-Amzn-SageMaker-Target-Variant": "AllTraffic"}
    other = {"X-Amzn-SageMaker-Custom-Attributes": "trace=zzz",
             "X-Amzn-SageMaker-Target-Variant": "AllTraffic"}
    n = 12
    reqs = [rows_of(100 + i, 2) for i in range(n)]
    hdrs_of = [special if i == 0 else other if i == 1 else {} for i in range(n)]
    rt.variant = "Blue"  # the variant SageMaker picks when none is asked for
    res = parallel(lambda i: post(gw, csv_of(reqs[i]), hdrs_of[i]), n)
    check_eq([(r[0], r[2]) for r in res], [(200, csv_answer(q)) for q in reqs],
             "pass-through: every request answered exactly")
    check_eq([r[1].get("x-amzn-invoked-production-variant") for r in res],
             ["AllTraffic", "AllTraffic"] + ["Blue"] * (n - 2),
             "pass-through: each client gets the variant its call invoked")
    check_eq([r[1].get("x-amzn-sagemaker-custom-attributes") for r in res],
             ["runtime-saw=trace=abc-123,tenant=7", "runtime-saw=trace=zzz"] + [None] * (n - 2),
             "pass-through: the runtime's CustomAttributes answer comes back to its client only")
    calls = rt.snapshot()
    check_calls(calls, "AKIAPASSTHROUGH", None, "pass-through")
    key = lambda c: (c["custom"], c["inference_id"], c["target"])
    mine = [c for c in calls if c["body"] == csv_of(reqs[0]).encode()]
    check_eq([key(c) for c in mine], [("trace=abc-123,tenant=7", "inference-0001", "AllTraffic")],
             "pass-through: the request's call alone carries its three headers")
    check_eq([sorted(set(c["signed"]) & {"x-amzn-sagemaker-custom-attributes",
                                          "x-amzn-sagemaker-inference-id",
                                          "x-amzn-sagemaker-target-variant"}) for c in mine],
             [["x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id",
               "x-amzn-sagemaker-target-variant"]], "pass-through: the three headers are signed")
    mixed = []
    for c in calls:
        lines = set(c["body"].decode().splitlines())
        owners = {i for i in range(n) if lines & set(csv_of(reqs[i]).splitlines())}
        keys_ = {(hdrs_of[i].get("X-Amzn-SageMaker-Custom-Attributes"),
                  hdrs_of[i].get("X-Amzn-SageMaker-Inference-Id"),
                  hdrs_of[i].get("X-Amzn-SageMaker-Target-Variant")) for i in owners}
        if len(keys_) != 1 or keys_ != {key(c)}:
            mixed.append((sorted(owners), key(c)))
    check_eq(mixed, [], "pass-through: no call mixes rows of requests with other header values, "
                        "and each call carries its rows' values")

    # Values SigV4 canonicalizes (runs of spaces, a tab, quotes and commas),
    # the longest one allowed (every visible ASCII character) and the empty
    # one (legal: boto3 sends CustomAttributes="" as an empty header, and
    # libcurl drops "Name: " from a list): sent as received, signed, echoed.
    for v in ("x=1   y=2;z=/+%20", "tab\there", 'q="quoted", k=v', "a" * 1024,
              "".join(chr(33 + i % 94) for i in range(1024)), ""):
        rt.reset()
        st, h, body = post(gw, "1,2\n", {"X-Amzn-SageMaker-Custom-Attributes": v})
        calls = rt.snapshot()
        check_eq((st, body, h.get("x-amzn-sagemaker-custom-attributes"),
                  [(c["custom"], c["bad"]) for c in calls]),
                 (200, "3.0\n", ("runtime-saw=" + v)[:1024], [(v, None)]),
                 "pass-through: CustomAttributes %r forwarded as is, signed, echoed" % v[:20])

    # boto3 pointed at the gateway: InferenceId at its longest (64 printable
    # ASCII characters) goes through exactly; one SageMaker's pattern
    # \A\S[\p{Print}]*\z refuses (a tab, a non-ASCII character) is refused
    # by the gateway as SageMaker would, 400 ValidationError, which boto3
    # does not retry, and never reaches SageMaker (which would refuse it
    # there: a 500 the SDK retries).
    import boto3  # noqa: E402
    import botocore.config  # noqa: E402
    import botocore.exceptions  # noqa: E402

    sm = boto3.client("sagemaker-runtime", region_name=REGION, endpoint_url=gw.url,
                      aws_access_key_id="AKIDCLIENT", aws_secret_access_key="client/secret",
                      config=botocore.config.Config(retries={"mode": "standard",
                                                             "max_attempts": 3}))

    def boto_invoke(**kw):
        try:
            r = sm.invoke_endpoint(EndpointName="sm", Body=b"1,2\n", ContentType="text/csv", **kw)
            return ("ok", r["Body"].read().decode(), r["ResponseMetadata"]["RetryAttempts"])
        except botocore.exceptions.ClientError as e:
            return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"],
                    e.response["ResponseMetadata"]["RetryAttempts"])

    iid64 = "".join(chr(33 + i % 94) for i in range(64))
    for v, want, sent in ((iid64, ("ok", "3.0\n", 0), [iid64]),
                          ("a b", ("ok", "3.0\n", 0), ["a b"]),
                          ("tab\there", (400, "ValidationError", 0), []),
                          ("\u00e9t\u00e9", (400, "ValidationError", 0), [])):
        rt.reset()
        check_eq((boto_invoke(InferenceId=v), [c["inference_id"] for c in rt.snapshot()]),
                 (want, sent), "pass-through: boto3 InferenceId %r" % v[:16])
    rt.reset()
    check_eq((boto_invoke(CustomAttributes=""), [c["custom"] for c in rt.snapshot()]),
             (("ok", "3.0\n", 0), [""]), "pass-through: boto3 CustomAttributes=\"\" forwarded")

    # TargetVariant: SageMaker's endpoint has variants of its own (Blue,
    # Green), not the gateway's "variant": any valid name is forwarded, and
    # SageMaker's ValidationError for one it lacks is the client's 400
    # (boto3 does not retry it); a name that breaks the pattern is refused
    # by the gateway, as SageMaker would.
    def boto_variant(tv):
        try:
            r = sm.invoke_endpoint(EndpointName="sm", Body=b"1,2\n", ContentType="text/csv",
                                   TargetVariant=tv)
            return (200, r["InvokedProductionVariant"], r["Body"].read().decode())
        except botocore.exceptions.ClientError as e:
            return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"],
                    e.response["ResponseMetadata"]["RetryAttempts"])

    for tv, want, sent in (("Blue", (200, "Blue", "3.0\n"), ["Blue"]),
                           ("Purple", (400, "ValidationError", 0), ["Purple"]),
                           ("bad_name", (400, "ValidationError", 0), []),
                           ("v" * 64, (400, "ValidationError", 0), [])):
        rt.reset()
        check_eq((boto_variant(tv), [c["target"] for c in rt.snapshot()]), (want, sent),
                 "pass-through: boto3 TargetVariant %r" % tv[:16])

    # The same over HTTP/2 (curl, h2c): the answer's headers come back on the stream.
    rt.reset()
    st, h, body = curl(gw.invoke_url("sm"), "4,5\n", http2=True,
                       headers=["Content-Type: text/csv", "Accept: text/csv",
                                "X-Amzn-SageMaker-Custom-Attributes: over-h2",
                                "X-Amzn-SageMaker-Inference-Id: h2-id"])
    check_eq((st, body, h.get("x-amzn-sagemaker-custom-attributes"),
              h.get("x-amzn-invoked-production-variant"),
              [(c["custom"], c["inference_id"], c["bad"]) for c in rt.snapshot()]),
             (200, "9.0\n", "runtime-saw=over-h2", "AllTraffic", [("over-h2", "h2-id", None)]),
             "pass-through over HTTP/2: forwarded, signed, echoed")

# ---- 9. formats converted for SageMaker (upstream_content_type, upstream_accept) ------
# libsvm and RecordIO from the client, CSV to the runtime (signed over the
# converted bytes), its JSON answers back as RecordIO label records.
import recordio_vectors as rv  # noqa: E402

pb2 = rv.load_pb2(tempfile.mkdtemp(prefix="pb2-", dir=tmp))
KEYS.add("AKIACONVERT", "conv/secret")
rt.reset()
RIO = "application/x-recordio-protobuf"


def rio_rows(rows):
    out = b""
    for r in rows:
        rec = pb2.Record()
        rec.features["values"].float32_tensor.values.extend(r)
        out += rv.frame_whole(rec.SerializeToString())
    return out


def rio_scores(body):
    """The label["score"] values of a RecordIO answer, one list per record."""
    out = []
    for payload in rv.read_frames(body):
        rec = pb2.Record()
        rec.ParseFromString(payload)
        out.append((sorted(rec.label.keys()), list(rec.label["score"].float32_tensor.values)))
    return out


with aws_env(AWS_ACCESS_KEY_ID="AKIACONVERT", AWS_SECRET_ACCESS_KEY="conv/secret"), \
        sm_gateway(rt, upstream_content_type="text/csv", upstream_accept="application/json",
                   feature_dim="4") as gw:
    for body, ctype, want_csv in (
            ("0 0:1 2:3\n1 1:2.5\n", "text/libsvm", "1.0,0,3.0,0\n0,2.5,0,0\n"),
            (rio_rows([[1, 0, 3, 0], [0.5, 0.25, 0, 0]]), RIO,
             "1.0,0.0,3.0,0.0\n0.5,0.25,0.0,0.0\n")):
        rt.reset()
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
        c.request("POST", "/endpoints/sm/invocations",
                  body=body if isinstance(body, bytes) else body.encode(),
                  headers={"Content-Type": ctype, "Accept": RIO})
        r = c.getresponse()
        out = r.read()
        c.close()
        calls = rt.snapshot()
        check_eq([(x["ctype"], x["accept"], x["body"].decode(), x["bad"]) for x in calls],
                 [("text/csv", "application/json", want_csv, None)],
                 "convert for SageMaker: %s reaches the runtime as signed CSV" % ctype)
        sums = [sum(float(v) for v in line.split(",")) for line in want_csv.splitlines()]
        check_eq((r.status, r.getheader("Content-Type"), rio_scores(out)),
                 (200, RIO, [(["score"], [x]) for x in sums]),
                 "convert for SageMaker: %s in, the runtime's JSON back as RecordIO" % ctype)

check_eq(rt.server.gone, [], "the gateway stayed for every answer of the runtime")
finish()
