"""Shared helpers for the integration tests: start the real bin/infergate on a
free loopback port with a temporary config, drive it with real clients, and
compute the expected predictions from the model files with the same math."""

import http.client
import http.server
import json
import math
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, os.environ.get("INFERGATE_BIN", "bin/infergate"))
DEMO_MODEL = os.path.join(ROOT, "conf", "models", "demo-kmeans.json")
# bin/fake-container, the model container of the tests: beside the gateway
# binary (build/san/ under SANITIZE=1) when it is there, else bin/.
_fake_default = os.path.join(os.path.dirname(os.environ.get("INFERGATE_BIN", "bin/infergate"))
                             or "bin", "fake-container")
if not os.path.exists(os.path.join(ROOT, _fake_default)):
    _fake_default = "bin/fake-container"
FAKE_BIN = os.path.join(ROOT, os.environ.get("FAKE_CONTAINER_BIN", _fake_default))
DIGITS = os.path.join(ROOT, "conf", "data", "digits.csv")
AWS = "/usr/bin/aws"  # Debian's awscli, not a pyenv shim

_results = {"passed": 0, "failed": 0}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop_proc(proc, sig=signal.SIGTERM, timeout=30):
    """Send <sig> (unless it has exited), wait up to <timeout> s, then kill;
    returns the exit status (-9 when it had to be killed)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


class LoopbackServer:
    """A listening socket on a free port of <host> (IPv6 when it has a
    colon) and a thread that accepts: each connection goes to
    self._serve(sock) on a thread of its own and stays in self.conns.
    Subclasses set what _serve reads before calling this __init__."""

    def __init__(self, host="127.0.0.1", backlog=64):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.hostport = "%s:%d" % ("[%s]" % host if ":" in host else host, self.port)
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def close(self):
        self.sock.close()


class ModelHandler(http.server.BaseHTTPRequestHandler):
    """A model container's handler for tests' own containers on loopback:
    HTTP/1.1 keep-alive, quiet, and send() to answer."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="text/csv", extra=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the gateway stopped the call

    def do_GET(self):  # the container contract's readiness; nothing else
        if self.path == "/ping":
            self.send(200, "", "application/json")
        else:
            self.send(404, "no")


class FakeContainer:
    """bin/fake-container on <port> (0: a free one, read from its
    'listening on' line) serving <model>, with <args>; stderr kept in a
    file under <logdir>. As a context manager it must exit 0 on SIGTERM."""

    def __init__(self, *args, model=DEMO_MODEL, port=0, logdir=None):
        self.args = list(args)
        self.err = open(os.path.join(logdir or tempfile.mkdtemp(prefix="ig-fake-"),
                                     "fake-%d.log" % time.monotonic_ns()), "w+")
        self.proc = subprocess.Popen([FAKE_BIN, "--model", model, "--port", str(port)] + self.args,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError("fake-container: no 'listening on' line: %r; stderr: %s"
                               % (line, self.stderr()))
        self.port = int(line.rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)

    def calls(self):
        return self.stats()["calls"]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        return stop_proc(self.proc, sig, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None:
            check_eq(code, 0, "fake-container exit status on SIGTERM; stderr: "
                     + self.stderr()[-1000:])
        return False


class _GatewayProcess:
    """What Gateway and AdminGateway share: bin/infergate's log (self.log)
    and its main listener (self.url)."""

    def stderr(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def metrics(self):
        """The text of GET /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            return r.read().decode()

    def metric(self, name, text=None):
        """The sample <name> (its labels written out, as /metrics has them),
        a float, or None when /metrics (or <text>) has no such line."""
        for line in (text if text is not None else self.metrics()).splitlines():
            if line.startswith(name + " "):
                return float(line[len(name) + 1:])
        return None

    def invoke_url(self, endpoint):
        return "%s/endpoints/%s/invocations" % (self.url, endpoint)


class Gateway(_GatewayProcess):
    """bin/infergate on a free port, with endpoints given as
    {name: {"model": path, key: value...}} and global options."""

    def __init__(self, endpoints, ping_scheme="http", **options):
        self.dir = tempfile.mkdtemp(prefix="ig-integ-")
        self.port = free_port()
        lines = ["listen = 127.0.0.1:%d" % self.port, "log_level = warn"]
        lines += ["%s = %s" % (k, v) for k, v in options.items()]
        for name, ep in endpoints.items():
            lines.append("[endpoint %s]" % name)
            for k, v in ep.items():
                if k == "model" and not v.startswith(("file://", "http", "sagemaker://")):
                    v = "file://" + v
                lines.append("%s = %s" % (k, v))
        self.conf = os.path.join(self.dir, "infergate.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "stderr.log"), "w+")
        self.proc = subprocess.Popen([BIN, "--config", self.conf], stdout=self.log,
                                     stderr=self.log, cwd=ROOT)
        self.url = "%s://127.0.0.1:%d" % (ping_scheme, self.port)
        ctx = None
        if ping_scheme == "https":
            import ssl
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited %d: %s" % (self.proc.returncode, self.stderr()))
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1, context=ctx) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not answer /ping: " + self.stderr())


    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit status."""
        return stop_proc(self.proc, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None:
            check(code == 0, "gateway exited %d on SIGTERM; stderr: %s" % (code, self.stderr()[-2000:]))
        return False


# ---- model math, mirroring DESIGN.md --------------------------------------

def load_model(path):
    with open(path) as f:
        return json.load(f)


def fmt(v):
    """The gateway's number format: exactly Python's repr(float)."""
    v = float(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def sum4(terms):
    """The model's reduction order: four partial sums over blocks of four,
    the tail into the first, combined as (s0 + s1) + (s2 + s3)."""
    s = [0.0, 0.0, 0.0, 0.0]
    n = len(terms)
    body = n - n % 4
    for i, t in enumerate(terms):
        s[i % 4 if i < body else 0] += t
    return (s[0] + s[1]) + (s[2] + s[3])


def predict(model, x):
    """One row -> (json_object_text, csv_line_text) as the gateway writes them."""
    algo = model["algorithm"]
    if algo == "kmeans":
        best, bestd = 0, None
        for i, c in enumerate(model["centroids"]):
            d = sum4([(a - b) * (a - b) for a, b in zip(x, c)])
            if bestd is None or d < bestd:
                best, bestd = i, d
        dist = math.sqrt(bestd)
        return ('{"closest_cluster":%s,"distance_to_cluster":%s}' % (fmt(float(best)), fmt(dist)),
                "%s,%s" % (fmt(float(best)), fmt(dist)))
    if algo == "pca":
        mean = model.get("mean") or [0.0] * len(x)
        proj = []
        for comp in model["components"]:
            proj.append(sum4([(xi - mi) * ci for xi, mi, ci in zip(x, mean, comp)]))
        vals = ",".join(fmt(p) for p in proj)
        return '{"projection":[%s]}' % vals, vals
    if algo == "linear-learner":
        z = sum4([xi * wi for xi, wi in zip(x, model["weights"])]) + model["bias"]
        if model["predictor_type"] == "regressor":
            return '{"score":%s}' % fmt(z), fmt(z)
        score = 1.0 / (1.0 + math.exp(-z))
        label = 1 if score >= model.get("threshold", 0.5) else 0
        return '{"score":%s,"predicted_label":%d}' % (fmt(score), label), "%s,%d" % (fmt(score), label)
    raise ValueError(algo)


def expected_body(model, rows, accept="application/json"):
    preds = [predict(model, r) for r in rows]
    if accept == "text/csv":
        return "".join(p[1] + "\n" for p in preds)
    if accept == "application/jsonlines":
        return "".join(p[0] + "\n" for p in preds)
    key = "projections" if model["algorithm"] == "pca" else "predictions"
    return '{"%s":[%s]}' % (key, ",".join(p[0] for p in preds))


def digits_rows(n=None):
    rows = []
    with open(DIGITS) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append([float(v) for v in line.split(",")])
            if n is not None and len(rows) >= n:
                break
    return rows


def csv_body(rows):
    return "".join(",".join(fmt(v) for v in r) + "\n" for r in rows)


# ---- clients ---------------------------------------------------------------

def curl(url, body, headers=(), http2=False, method=None, max_time=None, raw=False):
    """POST <body> (bytes, str, or a path prefixed with '@') with the real
    curl, over HTTP/1.1 or h2c with prior knowledge, within <max_time>
    seconds when given. -> (status, headers dict lower-cased, body text);
    with <raw>, the body's bytes and each header value as it came but for
    the spaces around it (a tab kept)."""
    d = tempfile.mkdtemp(prefix="ig-curl-")
    if isinstance(body, str) and body.startswith("@"):
        path = body[1:]
    else:
        path = os.path.join(d, "body")
        with open(path, "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode())
    cmd = ["curl", "-sS", "-D", os.path.join(d, "head"), "-o", os.path.join(d, "out"),
           "--http2-prior-knowledge" if http2 else "--http1.1", "--data-binary", "@" + path]
    if method:
        cmd += ["-X", method]
    if max_time is not None:
        cmd += ["--max-time", str(max_time)]
    for h in headers:
        cmd += ["-H", h]
    run(cmd + [url], timeout=(max_time or 50) + 10)
    try:
        with open(os.path.join(d, "head"), newline="") as f:
            head = f.read()
    except FileNotFoundError:  # no response at all
        head = ""
    # The last header block: an interim 100 Continue may come first.
    blocks = [b for b in head.split("\r\n\r\n") if b.strip()]
    lines = [l for l in (blocks[-1] if blocks else "").split("\r\n") if l]
    status = int(lines[0].split()[1]) if lines else 0
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip(" ") if raw else v.strip()
    try:
        with open(os.path.join(d, "out"), "rb") as f:
            out = f.read()
    except FileNotFoundError:  # no body at all
        out = b""
    return status, hdrs, out if raw else out.decode("utf-8", "replace")


# ---- results ---------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, sid, payload=b""):
    """One HTTP/2 frame (the stream id's reserved bit cleared)."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7fffffff) + payload


def h2_split(buf):
    """The whole frames at the start of <buf> as (type, flags, stream id,
    payload), and the bytes left over."""
    frames = []
    while len(buf) >= 9:
        n = struct.unpack(">I", b"\0" + buf[:3])[0]
        if len(buf) < 9 + n:
            break
        frames.append((buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7fffffff,
                       buf[9:9 + n]))
        buf = buf[9 + n:]
    return frames, buf


def h1_exchange(port, raw, timeout=3):
    """Send <raw> on a new connection; everything read until EOF or <timeout>
    seconds pass without a byte."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(raw)
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError:
        pass
    s.close()
    return got


def read_head(s, got=b""):
    """<got> (bytes read before: a keep-alive connection's next request)
    and the bytes read from socket <s> up to the end of a header block (and
    what came with it), or all there was before EOF."""
    while b"\r\n\r\n" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
    return got


def check(cond, what):
    if cond:
        _results["passed"] += 1
    else:
        _results["failed"] += 1
        print("FAIL: " + what, flush=True)
    return cond


def check_eq(got, want, what):
    ok = got == want
    if not ok:
        g, w = repr(got), repr(want)
        print("FAIL: %s\n  got:  %s\n  want: %s" % (what, g[:600], w[:600]), flush=True)
        _results["failed"] += 1
    else:
        _results["passed"] += 1
    return ok


def run(cmd, input=None, timeout=60, env=None):
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)


def finish():
    name = os.path.basename(sys.argv[0])
    print("%s: %d passed, %d failed" % (name, _results["passed"], _results["failed"]), flush=True)
    sys.exit(1 if _results["failed"] else 0)


# ---- duplex streams ---------------------------------------------------------

def uses_asan(pid):
    """1 when the process <pid> runs with ASan (its quarantine keeps freed
    memory resident: RSS bounds must allow for it)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class H2Client:
    """A python-h2 client over a plain socket (python3-h2) that sends a
    stream's body in pieces as flow control allows and records what each
    stream got back (data, headers, END_STREAM, reset code) and how the
    connection ended; for duplex streams (POST /transform)."""

    def __init__(self, port, window=None, conn_window=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        if conn_window is not None:
            self.conn.increment_flow_control_window(conn_window)
        self.sock.sendall(self.conn.data_to_send())
        self.data, self.ended, self.resets, self.headers = {}, set(), {}, {}
        self.goaway = self.goaway_last = None
        self.rest = b""
        self.closed = False
        self.pending = b""  # bytes read while sending, for pump()
        self.sent = 0

    def open(self, path, headers=(), end=False):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
                (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end)
        self.flush()
        self.data[sid] = b""
        return sid

    def flush(self):
        """Send what h2 has queued. While the socket takes no more, what the
        server sends is read and kept for pump(): a server that stops reading
        while its own answers wait for this (single-threaded) client would
        otherwise leave both blocked. No progress for 10 s: closed."""
        out = self.conn.data_to_send()
        if not out or self.closed:
            return
        view, last = memoryview(out), time.time()
        try:
            while view and not self.closed:
                r, w, _ = select.select([self.sock], [self.sock], [], 0.5)
                if w:
                    self.sock.settimeout(0)
                    try:
                        n = self.sock.send(view[:1 << 16])
                    except (BlockingIOError, InterruptedError):
                        n = 0
                    view = view[n:]
                    if n:
                        last = time.time()
                if r and view:
                    self.sock.settimeout(0)
                    try:
                        got = self.sock.recv(1 << 20)
                    except (BlockingIOError, InterruptedError):
                        got = None
                    if got == b"":
                        self.closed = True
                    elif got:
                        self.pending += got
                        last = time.time()
                if view and time.time() - last > 10:
                    self.closed = True  # what went is unknown, the framing lost
        except OSError:
            self.closed = True
        try:
            self.sock.settimeout(10)  # as before: blocking, for callers that read it
        except OSError:
            pass

    def send(self, sid, data, end=False):
        """Send what flow control allows now; -> bytes sent."""
        sent = 0
        try:
            while sent < len(data):
                n = min(len(data) - sent, self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n <= 0:
                    break
                self.conn.send_data(sid, data[sent:sent + n])
                sent += n
            if end and sent == len(data):
                self.conn.end_stream(sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.flush()
        self.sent += sent
        return sent

    def send_all(self, sid, data, end=True, timeout=20):
        """Send all of <data> (reading and acknowledging as the window needs)."""
        off, deadline = 0, time.time() + timeout
        while off < len(data) and time.time() < deadline and not self.done(sid):
            off += self.send(sid, data[off:], end=end)
            if off < len(data):
                self.pump(0.05)
        if end and off == len(data) and len(data) == 0:
            self.send(sid, b"", end=True)
        return off

    def pump(self, timeout=0.2, consume=True):
        if self.closed:
            time.sleep(timeout)
            return False
        if self.pending:  # read by flush() while it could not write
            buf, self.pending = self.pending, b""
        else:
            self.sock.settimeout(timeout)
            try:
                buf = self.sock.recv(1 << 20)
            except socket.timeout:
                return False
            except OSError:
                self.closed = True
                return False
            if not buf:
                self.closed = True
                return False
        # python-h2 closes its state machine on a GOAWAY and then refuses the DATA
        # the server still sends on open streams (a drain): GOAWAYs are noted here
        # and not passed on
        frames, self.rest = h2_split(self.rest + buf)
        buf = b""
        for ftype, flags, fsid, payload in frames:
            if ftype == 7:
                self.goaway = struct.unpack(">I", payload[4:8])[0]
                self.goaway_last = struct.unpack(">I", payload[:4])[0] & 0x7fffffff
            else:
                buf += h2_frame(ftype, flags, fsid, payload)
        try:
            events = self.conn.receive_data(buf)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for ev in events:
            if isinstance(ev, h2.events.DataReceived):
                self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                if consume:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.ResponseReceived):
                self.headers[ev.stream_id] = dict((k.decode(), v.decode()) for k, v in ev.headers)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = int(ev.error_code)
        self.flush()
        return True

    def done(self, sid):
        return sid in self.ended or sid in self.resets or self.closed

    def wait(self, sid, timeout=10, consume=True):
        deadline = time.time() + timeout
        while not self.done(sid) and time.time() < deadline:
            self.pump(0.1, consume)
        return self.done(sid)

    def reset(self, sid):
        try:
            self.conn.reset_stream(sid)
        except h2.exceptions.StreamClosedError:
            pass
        self.flush()

    def close(self):
        self.closed = True
        self.sock.close()


# ---- the admin (SageMaker control-plane) API ---------------------------------

ADMIN_KEY = "AKIDTEST"
ADMIN_SECRET = "SECRET"
ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::000000000000:role/infergate-tests"
REDIS_BIN = "/usr/bin/redis-server"


def sm_arn(kind, name, region=REGION):
    """A SageMaker ARN as the service writes it: the name lower-cased."""
    return "arn:aws:sagemaker:%s:%s:%s/%s" % (region, ACCOUNT, kind, name.lower())


def sigv4_headers(host, target, body, key=ADMIN_KEY, secret=ADMIN_SECRET, region=REGION,
                  amz_date=None, service="sagemaker", path="/",
                  content_type="application/x-amz-json-1.1"):
    """The headers of a SigV4-signed JSON 1.1 POST (docs: sagemaker-protocols.md
    section 3.1), signed here rather than by botocore so a test can choose
    X-Amz-Date (<amz_date>: a datetime in UTC, or None for now). <target>
    None: no X-Amz-Target header."""
    import datetime
    import hashlib
    import hmac
    if amz_date is None:
        amz_date = datetime.datetime.now(datetime.timezone.utc)
    stamp = amz_date.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    if isinstance(body, str):
        body = body.encode()
    hdrs = {"content-type": content_type, "host": host, "x-amz-date": stamp}
    if target is not None:
        hdrs["x-amz-target"] = target
    names = sorted(hdrs)
    creq = "\n".join(["POST", path, ""] + ["%s:%s" % (n, hdrs[n]) for n in names] +
                     ["", ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])

    def h(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()
    k = h(h(h(h(("AWS4" + secret).encode(), day), region), service), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    out = {"Content-Type": content_type, "Host": host, "X-Amz-Date": stamp,
           "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                            % (key, scope, ";".join(names), sig)}
    if target is not None:
        out["X-Amz-Target"] = target
    return out


def admin_request(port, op, body, sign=True, key=ADMIN_KEY, secret=ADMIN_SECRET, amz_date=None,
                  target=None, timeout=20):
    """One raw control-plane call: POST / on 127.0.0.1:<port> with
    X-Amz-Target SageMaker.<op> (or <target> verbatim), <body> a dict (sent
    as JSON) or str/bytes (sent as is), SigV4-signed unless <sign> is false.
    -> (status, headers dict lower-cased, body bytes, parsed JSON or None)."""
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    host = "127.0.0.1:%d" % port
    tgt = target if target is not None else "SageMaker." + op
    if sign:
        hdrs = sigv4_headers(host, tgt, body, key, secret, amz_date=amz_date)
    else:
        hdrs = {"Content-Type": "application/x-amz-json-1.1", "Host": host, "X-Amz-Target": tgt}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/", body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        rh = {k.lower(): v for k, v in r.getheaders()}
        status = r.status
    finally:
        c.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return status, rh, data, parsed


class AdminGateway(_GatewayProcess):
    """bin/infergate with the admin API on its own loopback port
    (admin_listen), SigV4 checked against ADMIN_KEY / ADMIN_SECRET unless
    auth=False, the job store in <redis_url> or an embedded redis-server in
    <data_dir> (default: a new directory), config-file endpoints as
    Gateway takes them, and more global <options>. restart() stops it
    (SIGTERM) and starts it again on the same ports, configuration and
    data_dir. Started, it answers /ping on the main port and accepts
    connections on the admin port."""

    def __init__(self, endpoints=None, data_dir=None, redis_url="", auth=True,
                 start_timeout=20, **options):
        self.dir = tempfile.mkdtemp(prefix="ig-admin-")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.port, self.admin_port = free_port(), free_port()
        self.start_timeout = start_timeout
        lines = ["listen = 127.0.0.1:%d" % self.port,
                 "admin_listen = 127.0.0.1:%d" % self.admin_port,
                 "log_level = warn",
                 "data_dir = %s" % self.data_dir,
                 "redis_url = %s" % redis_url,
                 "admin_auth = %s" % ("on" if auth else "off")]
        if auth:
            lines += ["admin_access_key = %s" % ADMIN_KEY, "admin_secret_key = %s" % ADMIN_SECRET]
        # file:// images may run tests/byo/serve and /bin's programs (the tests'
        # serve program, and /bin/false for one that exits at start)
        options.setdefault("admin_exec_dirs", os.path.join(ROOT, "tests", "byo") + ":/bin")
        lines += ["%s = %s" % (k, v) for k, v in options.items()]
        for name, ep in (endpoints or {}).items():
            lines.append("[endpoint %s]" % name)
            for k, v in ep.items():
                if k == "model" and not v.startswith(("file://", "http", "sagemaker://")):
                    v = "file://" + v
                lines.append("%s = %s" % (k, v))
        self.conf = os.path.join(self.dir, "infergate.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "stderr.log"), "a+")
        self.url = "http://127.0.0.1:%d" % self.port
        self.admin_url = "http://127.0.0.1:%d" % self.admin_port
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([BIN, "--config", self.conf], stdout=self.log,
                                     stderr=self.log, cwd=ROOT)
        deadline = time.time() + self.start_timeout
        pinged = False
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited %d: %s" % (self.proc.returncode,
                                                              self.stderr()[-3000:]))
            try:
                if not pinged:
                    with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                        pinged = r.status == 200
                if pinged:
                    socket.create_connection(("127.0.0.1", self.admin_port), timeout=1).close()
                    return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("gateway did not answer /ping and accept on the admin port: "
                           + self.stderr()[-3000:])

    def restart(self, timeout=30):
        """SIGTERM, wait, start again; returns the exit status of the stop."""
        code = self.stop(timeout)
        self.start()
        return code


    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        return stop_proc(self.proc, timeout=timeout)

    def call(self, op, body, **kw):
        """admin_request() against this gateway's admin port."""
        return admin_request(self.admin_port, op, body, **kw)

    def sagemaker(self, key=ADMIN_KEY, secret=ADMIN_SECRET, attempts=1, url=None):
        """A boto3 SageMaker client on the admin port, <attempts> tries a
        call (1: what the gateway answered, never a retry)."""
        import boto3
        import botocore.config
        return boto3.client("sagemaker", endpoint_url=url or self.admin_url,
                            region_name=REGION, aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=botocore.config.Config(
                                retries={"total_max_attempts": attempts},
                                connect_timeout=5, read_timeout=30))

    def runtime(self, key=ADMIN_KEY, secret=ADMIN_SECRET):
        import boto3
        import botocore.config
        return boto3.client("sagemaker-runtime", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            config=botocore.config.Config(retries={"total_max_attempts": 1},
                                                          connect_timeout=5, read_timeout=30))

    def aws(self, *args, admin=True, timeout=120, key=ADMIN_KEY, secret=ADMIN_SECRET):
        """Debian's aws CLI with --endpoint-url this gateway's admin (or main)
        URL, one attempt a call, JSON output. -> CompletedProcess (text)."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION=REGION, AWS_MAX_ATTEMPTS="1", AWS_PAGER="",
                   AWS_DEFAULT_OUTPUT="json", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        cmd = [AWS] + list(args[:2]) + ["--endpoint-url",
                                        self.admin_url if admin else self.url] + list(args[2:])
        return subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, text=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None:
            check(code == 0, "gateway exited %d on SIGTERM; stderr: %s"
                  % (code, self.stderr()[-2000:]))
        return False


class RedisServer:
    """An external redis-server on a free loopback port (AOF on, in its own
    directory, so stop() then start() keeps the data); .url is its
    redis:// URL."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ig-redis-")
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.dir, "redis.log"), "a+")
        self.proc = None
        self.start()

    def start(self, timeout=10):
        self.proc = subprocess.Popen([REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", self.dir, "--appendonly", "yes",
                                      "--appendfsync", "always", "--save", "",
                                      "--daemonize", "no"],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    s.close()
                    return
                s.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING on port %d" % self.port)

    def stop(self, timeout=10):
        return stop_proc(self.proc, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
