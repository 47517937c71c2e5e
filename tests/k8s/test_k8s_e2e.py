"""make k8s-e2e: the sidecar pod played by podman from the Kubernetes YAML of
docker/k8s/test, and checked through it.

Run as root after make k8s-images (the Makefile target does both), with
CONTAINERS_CONF naming the containers.conf that makes podman work on these
machines (../shared/reference/k8s-podman.md). All traffic goes to
127.0.0.1: infergate's 8081 is the host's 127.0.0.1:18081, the model's
8080 is 127.0.0.1:18080 (hostPorts of the test overlay).

1. predictions through the pod equal the model's math (iglib), over h2c
   and HTTP/1.1, CSV and JSON answers, one row and many; the model's port
   answers the same (the benchmark calls it directly); the gateway runs as
   the image's non-root user; the liveness probe passes.
2. /readyz is 503 "not ready" naming the container while the model
   container is stopped (liveness stays healthy: a restart of the gateway
   would not fix the model), and 200 again once it starts.
3. the model container's process SIGKILLed under load (4 keep-alive
   clients): every answer is an exact 200, or 503 ServiceUnavailable or
   424 ModelError naming the backend; none takes past its deadline; the
   pod's restartPolicy brings the model back and every request 1 s later
   is an exact 200.
4. the gateway container restarted (podman stop: SIGTERM, drain, exit 0;
   podman start): it serves exact predictions again.
5. 96 bodies of 6 MiB at once (576 MiB, over the ConfigMap's 512 MiB
   max_buffered_body_bytes): each answer the exact predictions or
   ThrottlingException with its exact message; neither container
   OOM-killed (1Gi limits) nor restarted; nothing held afterwards.
6. the pod stopped under load (podman pod stop with the manifest's
   terminationGracePeriodSeconds, as the kubelet does: podman 4.3's kube
   down alone SIGKILLs at once), then podman kube down; h2load plus Python
   h2c and HTTP/1.1 clients that check every answer: every request the
   gateway accepted is answered (200 exact or an error answer), none is
   cut; a request is not accepted only when HTTP/2 says so (stream id above
   the final GOAWAY's last-stream-id, or REFUSED_STREAM) or HTTP/1.1's
   connection ends before any byte of its answer. The gateway's log shows
   the drain, its exit status is 0, and no pod or container is left.

MODEL_ARGS="--latency-us 0 ..." replaces the fake container's flags of the
test overlay (through a kustomize overlay written under build/k8s/).
The pod is taken down at the end, failed checks or not.
"""

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
from h2.connection import ConnectionState  # noqa: E402

from iglib import (DEMO_MODEL, ROOT, check, check_eq, csv_body, curl, digits_rows,  # noqa: E402
                   expected_body, load_model)
import iglib  # noqa: E402

POD = "infergate-sidecar"
GW = POD + "-infergate"
MODEL_C = POD + "-model"
GW_PORT = 18081
MODEL_PORT = 18080
DEFAULT_PORT = 18090  # the image run alone with its default command (part 0)
EP = "model"
PATH = "/endpoints/%s/invocations" % EP
CSV = "text/csv"
JSON = "application/json"
LABEL = "container http://127.0.0.1:8080"
OVERLAY = os.path.join(ROOT, "docker", "k8s", "test")

MODEL = load_model(DEMO_MODEL)
ROWS = digits_rows(200)
T0 = time.time()


def section(name):
    print("-- %s (%.1f s)" % (name, time.time() - T0), flush=True)


def sh(cmd, timeout=120, input=None):
    """Run <cmd> (a list); (exit status, stdout, stderr) as text."""
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, text=True)
    return p.returncode, p.stdout, p.stderr


def podman(*args, timeout=120, input=None):
    return sh(["podman"] + list(args), timeout=timeout, input=input)


def manifests():
    """The test overlay's YAML; with MODEL_ARGS, an overlay of it that
    replaces the model container's args."""
    src = OVERLAY
    extra = os.environ.get("MODEL_ARGS")
    if extra is not None:
        src = os.path.join(ROOT, "build", "k8s", "overlay")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                    "resources:\n  - %s\npatches:\n  - path: args.yaml\n"
                    % os.path.relpath(OVERLAY, src))
        with open(os.path.join(src, "args.yaml"), "w") as f:
            f.write("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n"
                    "    - name: model\n      args: %s\n" % (POD, json.dumps(shlex.split(extra))))
    rc, out, err = sh(["kubectl", "kustomize", src])
    if rc != 0:
        raise SystemExit("kubectl kustomize %s: %s" % (src, err.strip()))
    return out


def kube_down(yaml_text):
    rc, out, err = podman("kube", "down", "-", input=yaml_text, timeout=90)
    return rc, out + err


def pod_gone():
    rc, out, _ = podman("pod", "exists", POD)
    return rc != 0


def readyz():
    try:
        c = http.client.HTTPConnection("127.0.0.1", GW_PORT, timeout=3)
        c.request("GET", "/readyz")
        r = c.getresponse()
        return r.status, r.read().decode()
    except OSError as e:
        return None, repr(e)


def get_status(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return None


def wait_for(cond, timeout=20, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def h1_post(port, body, ctype=CSV, accept=CSV, timeout=30, path=PATH):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype, "Accept": accept})
        r = c.getresponse()
        return r.status, r.getheader("x-amzn-ErrorType"), r.read().decode()
    finally:
        c.close()


def csv_row(row):
    return csv_body([row])


def inspect(container, fmt):
    rc, out, _ = podman("inspect", "--format", fmt, container)
    return out.strip() if rc == 0 else None


# ---- 1. predictions through the pod ----------------------------------------------------

def test_predictions():
    section("1. predictions through the pod, h2c and HTTP/1.1")
    url = "http://127.0.0.1:%d%s" % (GW_PORT, PATH)
    for rows in (ROWS[:1], ROWS[:50]):
        body = csv_body(rows)
        for h2c in (False, True):
            proto = "h2c" if h2c else "HTTP/1.1"
            for accept in (JSON, CSV):
                st, hdrs, out = curl(url, body, ["Content-Type: text/csv", "Accept: " + accept],
                                     http2=h2c)
                check_eq((st, hdrs.get("content-type"), out),
                         (200, accept, expected_body(MODEL, rows, accept)),
                         "%d rows over %s, Accept %s: the model's exact predictions"
                         % (len(rows), proto, accept))
    # JSON in, the rows' own instances
    inst = json.dumps({"instances": [[float(v) for v in r] for r in ROWS[:3]]})
    st, hdrs, out = curl(url, inst, ["Content-Type: application/json", "Accept: " + JSON],
                         http2=True)
    check_eq((st, out), (200, expected_body(MODEL, ROWS[:3], JSON)),
             "application/json instances over h2c: exact predictions")
    # the model container's own port, as load/bench-sidecar.sh calls it
    st, hdrs, out = curl("http://127.0.0.1:%d/invocations" % MODEL_PORT, csv_body(ROWS[:5]),
                         ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, expected_body(MODEL, ROWS[:5], CSV)),
             "the model container on 127.0.0.1:%d answers the same" % MODEL_PORT)
    # a row the model refuses: its 400 relayed as SageMaker relays it (424 ModelError)
    st, hdrs, out = curl(url, "1,2,3\n", ["Content-Type: text/csv"], http2=True)
    orig = '{"message": "Row 1: expected 64 features, found 3."}'
    want = json.dumps({
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/"
                        "Endpoints/" + EP,
        "Message": 'Received client error (400) from AllTraffic with message "%s".' % orig,
        "OriginalMessage": orig, "OriginalStatusCode": 400}, separators=(",", ":"))
    check_eq((st, hdrs.get("x-amzn-errortype"), out), (424, "ModelError", want),
             "a 3-feature row: 424 ModelError with the model's 400 and message")
    check_eq(podman("exec", GW, "id", "-u")[1].strip(), "10001",
             "the gateway runs as the image's non-root user")
    check_eq(podman("exec", MODEL_C, "id", "-u")[1].strip(), "10001",
             "the model runs as the image's non-root user")
    rc, out, err = podman("healthcheck", "run", GW)
    check_eq(rc, 0, "the liveness probe (podman healthcheck run: curl /healthz in the "
             "container) passes: %s" % (out + err).strip()[-200:])
    check_eq(inspect(GW, "{{.Config.StopSignal}}"), "15", "the gateway's stop signal is SIGTERM")


# ---- 2. readiness follows the model container --------------------------------------------

def test_readiness():
    section("2. /readyz while the model container is stopped, and after it starts")
    check_eq(readyz(), (200, '{"status":"ready"}'), "/readyz 200 ready with the model up")
    rc, _, err = podman("stop", MODEL_C, timeout=60)
    check_eq(rc, 0, "podman stop %s: %s" % (MODEL_C, err.strip()))
    want = (503, '{"status":"not ready","reason":"%s: GET /ping failed: '
                 'Couldn\'t connect to server"}' % LABEL)
    wait_for(lambda: readyz()[0] == 503, timeout=10)
    check_eq(readyz(), want, "/readyz 503 not ready, naming the container, while it is stopped")
    st, et, out = h1_post(GW_PORT, csv_row(ROWS[0]), timeout=10)
    check_eq((st, et, out),
             (503, "ServiceUnavailable",
              '{"message":"Row 1: The model backend (%s) cannot be reached: '
              'Couldn\'t connect to server."}' % LABEL),
             "a request while the model is stopped: 503 ServiceUnavailable naming the backend")
    rc, out, err = podman("healthcheck", "run", GW)
    check_eq(rc, 0, "liveness still passes with the model down (a gateway restart fixes "
             "nothing): %s" % (out + err).strip()[-200:])
    rc, _, err = podman("start", MODEL_C)
    check_eq(rc, 0, "podman start %s: %s" % (MODEL_C, err.strip()))
    t = time.time()
    ok = wait_for(lambda: readyz() == (200, '{"status":"ready"}'), timeout=10)
    check(ok, "/readyz 200 ready again after the model starts (%s)" % (readyz(),))
    print("  ready again %.2f s after podman start" % (time.time() - t))
    st, et, out = h1_post(GW_PORT, csv_row(ROWS[1]))
    check_eq((st, out), (200, expected_body(MODEL, [ROWS[1]], CSV)),
             "exact prediction after the model is back")


# ---- 3. the model container killed mid-load ---------------------------------------------

DEADLINE = 10.0  # s: no request may take longer (retries and the breaker answer sooner)


def test_model_killed():
    section("3. the model container's process SIGKILLed under load")
    ok_503 = re.compile(r'^\{"message":"(Row 1: )?The model backend \(%s\) (cannot be reached: '
                        r'[^"]+\.|is failing: the circuit breaker is open after \d+ failed calls '
                        r'in a row; retry later\.)"\}$' % re.escape(LABEL))
    ok_424 = re.compile(r'^\{"ErrorCode":"SERVER_ERROR_FROM_MODEL".*"OriginalStatusCode":\d+\}$')
    stop = threading.Event()
    results, lock = [], threading.Lock()

    def client(k):
        i = 0
        while not stop.is_set():
            row = ROWS[(k * 37 + i) % len(ROWS)]
            t = time.time()
            try:
                st, et, out = h1_post(GW_PORT, csv_row(row), timeout=DEADLINE + 5)
            except OSError as e:
                st, et, out = None, None, repr(e)
            with lock:
                results.append((t, time.time() - t, st, et, out, row))
            i += 1
    ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
    for t in ts:
        t.start()
    time.sleep(1.0)
    pid = inspect(MODEL_C, "{{.State.Pid}}")
    restarts = inspect(MODEL_C, "{{.RestartCount}}")
    killed = False
    if pid and pid != "0":
        # The process itself, as a crash would: podman kill counts as a
        # stop by the user and the restart policy would not apply.
        os.kill(int(pid), signal.SIGKILL)
        killed = True
    t_kill = time.time()
    check(killed, "the model container's process (pid %s) SIGKILLed" % pid)
    back = wait_for(lambda: inspect(MODEL_C, "{{.RestartCount}}") != restarts and
                    inspect(MODEL_C, "{{.State.Status}}") == "running", timeout=15)
    check(back, "restartPolicy Always restarted the model container (restarts %s -> %s)"
          % (restarts, inspect(MODEL_C, "{{.RestartCount}}")))

    def last_failure():
        """When the last answer other than 200 arrived (the kill if none)."""
        with lock:
            ends = [r[0] + r[1] for r in results if r[2] != 200]
        return max([t_kill] + ends)
    # Recovered: 2.5 s of nothing but 200s (each checked exact below), within
    # 15 s of the kill. The breaker may open (after breaker_failures failed
    # calls in a row) before the model is back; it stays open
    # breaker_open_ms (5 s by default), then a probe closes it.
    recovered = wait_for(lambda: time.time() - last_failure() >= 2.5, timeout=15)
    stop.set()
    for t in ts:
        t.join()
    t_back = last_failure()
    check(recovered, "recovered: only 200s for 2.5 s, within 15 s of the kill (last failure "
          "%.2f s after it)" % (t_back - t_kill))
    bad, n200, n503, n424, slow = [], 0, 0, 0, 0
    for t, dt, st, et, out, row in results:
        if st == 200 and out == expected_body(MODEL, [row], CSV):
            n200 += 1
        elif st == 503 and et == "ServiceUnavailable" and ok_503.match(out):
            n503 += 1
        elif st == 424 and et == "ModelError" and ok_424.match(out):
            n424 += 1
        else:
            bad.append((st, et, out[:200]))
        if dt > DEADLINE:
            slow += 1
    for b in bad[:3]:
        print("  unexpected answer: %r" % (b,))
    print("  %d requests: %d exact 200, %d ServiceUnavailable, %d ModelError; serving again "
          "%.2f s after the kill" % (len(results), n200, n503, n424, t_back - t_kill))
    check_eq(bad, [], "every answer around the kill: exact 200, ServiceUnavailable or ModelError")
    check_eq(slow, 0, "no request took longer than %.0f s" % DEADLINE)
    after = [r for r in results if r[0] > t_back]
    check(len(after) > 10, "requests served after the recovery (%d)" % len(after))


# ---- 4. the gateway container restarted ---------------------------------------------------

def test_gateway_restart():
    section("4. the gateway container restarted")
    # stop, then start: podman restart would hide the first run's exit status
    rc, _, err = podman("stop", "--time", "40", GW, timeout=60)
    check_eq(rc, 0, "podman stop %s: %s" % (GW, err.strip()))
    check_eq(inspect(GW, "{{.State.ExitCode}}"), "0",
             "the gateway container's first run exits 0 on SIGTERM (podman inspect)")
    rc, _, err = podman("start", GW, timeout=60)
    check_eq(rc, 0, "podman start %s: %s" % (GW, err.strip()))
    check_eq(inspect(GW, "{{.State.Status}}"), "running", "the gateway runs again")
    ready = wait_for(lambda: readyz() == (200, '{"status":"ready"}'), timeout=15)
    check(ready, "/readyz 200 after the restart (%s)" % (readyz(),))
    rows = ROWS[10:13]
    url = "http://127.0.0.1:%d%s" % (GW_PORT, PATH)
    for h2c in (False, True):
        st, hdrs, out = curl(url, csv_body(rows), ["Content-Type: text/csv", "Accept: text/csv"],
                             http2=h2c)
        check_eq((st, out), (200, expected_body(MODEL, rows, CSV)),
                 "exact predictions after the restart over %s" % ("h2c" if h2c else "HTTP/1.1"))
    _, logs, errs = podman("logs", GW)
    lines = (logs + errs).splitlines()
    check(any('"msg":"drained: ' in l for l in lines),
          "the first run's log says it drained on SIGTERM")
    check(sum('starting"' in l for l in lines) >= 2, "the log shows the second start")


# ---- 5. the memory limit against a flood of maximum-size bodies ----------------------------

FLOOD_CLIENTS = 96  # 96 x 6 MiB = 576 MiB at once: past max_buffered_body_bytes (512 MiB)


def metric_value(name):
    c = http.client.HTTPConnection("127.0.0.1", GW_PORT, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    m = re.search(r"^%s (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def test_memory_flood():
    section("5. %d bodies of 6 MiB at once against the pod's memory limits" % FLOOD_CLIENTS)
    # The same 200 rows over and over up to max_body_bytes: the answer is
    # the same block of predictions over and over.
    block = csv_body(ROWS)
    reps = 6291456 // len(block)
    body = (block * reps).encode()
    want = expected_body(MODEL, ROWS, CSV) * reps
    restarts = {c: inspect(c, "{{.RestartCount}}") for c in (GW, MODEL_C)}
    # ThrottlingException naming a memory limit of the sidecar's ConfigMap
    # (max_buffered_body_bytes, 536870912; the connection's share,
    # max_conn_buffered_bytes, 67108864) at whatever point it was reached
    # (the body arriving, rows sent to the model, the model's answer), or
    # the queue of big bodies waiting to decode, or the budget as the rows
    # are split (the codec's message names no number)
    thr_re = re.compile(
        r'^\{"message":"((Row \d+: )?[^"]*\(?(536870912|67108864) bytes\)?[^"]*; retry later'
        r'[^"]*|Too many large request bodies are waiting to be decoded; retry later|'
        r"Row \d+: the decoded features of this request do not fit in the gateway's memory "
        r'budget; retry later or send fewer rows)\."\}$')
    out, lock = [], threading.Lock()

    def client():
        t = time.time()
        try:
            st, et, text = h1_post(GW_PORT, body, timeout=120)
        except OSError as e:
            st, et, text = None, None, repr(e)
        with lock:
            out.append((st, et, text, time.time() - t))
    ts = [threading.Thread(target=client, daemon=True) for _ in range(FLOOD_CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    n200 = sum(1 for o in out if o[0] == 200 and o[2] == want)
    nthr = sum(1 for o in out if o[0] == 400 and o[1] == "ThrottlingException" and
               thr_re.match(o[2]))
    other = [(o[0], o[1], o[2][:200]) for o in out if not (o[0] == 200 and o[2] == want) and
             not (o[0] == 400 and o[1] == "ThrottlingException" and thr_re.match(o[2]))]
    print("  %d requests of %d bytes (%d rows): %d exact 200, %d ThrottlingException, "
          "slowest %.1f s" % (len(out), len(body), len(ROWS) * reps, n200, nthr,
                              max(o[3] for o in out)))
    for o in other[:3]:
        print("  unexpected answer: %r" % (o,))
    check_eq(other, [], "every answer: the exact predictions or ThrottlingException")
    check(n200 > 0, "some of the big requests answered in full")
    for c in (GW, MODEL_C):
        check_eq((inspect(c, "{{.State.OOMKilled}}"), inspect(c, "{{.RestartCount}}"),
                  inspect(c, "{{.State.Status}}")), ("false", restarts[c], "running"),
                 "%s: not OOM-killed, not restarted, running" % c)
    # a request in progress holds one 4 KiB unit: /metrics sees itself
    check(wait_for(lambda: metric_value("infergate_buffered_bytes") == 4096, timeout=10),
          "afterwards the gateway holds nothing for clients but the asking request "
          "(infergate_buffered_bytes %s)"
          % metric_value("infergate_buffered_bytes"))
    st, et, text = h1_post(GW_PORT, csv_row(ROWS[7]))
    check_eq((st, text), (200, expected_body(MODEL, [ROWS[7]], CSV)),
             "a one-row request afterwards: exact")


# ---- 6. podman kube down under load --------------------------------------------------------

class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.bad = []
        self.notes = []  # not outcomes: how connections ended
        self.errors = []  # the first error answers, to print

    def add(self, outcome, detail=""):
        with self.lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if outcome in ("bad", "cut"):
                self.bad.append(detail)
            elif outcome == "error" and len(self.errors) < 3:
                self.errors.append(detail)


def classify(st, et, out, row):
    if st == 200:
        return "200" if out == expected_body(MODEL, [row], CSV) else "bad"
    # an error answer: SageMaker's shape, x-amzn-ErrorType and a JSON message
    try:
        j = json.loads(out)
    except ValueError:
        return "bad"
    if st in (400, 424, 500, 503) and et and isinstance(j, dict) and \
            ("message" in j or "Message" in j):
        return "error"
    return "bad"


def h1_loop(tally, stop, k):
    """One keep-alive connection at a time, requests until stopped; a new
    connection after each close."""
    i = 0
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", GW_PORT, timeout=DEADLINE + 5)
            c.connect()
        except OSError:
            tally.add("refused")
            time.sleep(0.05)
            continue
        while not stop.is_set():
            row = ROWS[(k * 53 + i) % len(ROWS)]
            i += 1
            try:
                c.request("POST", PATH, body=csv_row(row),
                          headers={"Content-Type": CSV, "Accept": CSV})
            except OSError:
                tally.add("refused")
                break
            try:
                r = c.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the connection ended before any byte of an answer: not accepted
                tally.add("refused")
                break
            except OSError as e:
                tally.add("cut", "h1 %r" % e)
                break
            try:
                body = r.read().decode()
            except (OSError, http.client.IncompleteRead) as e:
                tally.add("cut", "h1 answer cut: %r" % e)
                break
            tally.add(classify(r.status, r.getheader("x-amzn-ErrorType"), body, row),
                      "h1 %s %r" % (r.status, body[:120]))
            if (r.getheader("connection") or "").lower() == "close":
                break
        c.close()


MAX_H2_LAST = (1 << 31) - 1  # the shutdown notice's last-stream-id


def h2_loop(tally, stop, k, streams=8):
    """One h2c connection keeping <streams> requests open until the final
    GOAWAY (or the end); every stream's outcome counted."""
    try:
        s = socket.create_connection(("127.0.0.1", GW_PORT), timeout=5)
    except OSError:
        tally.add("refused")
        return
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.increment_flow_control_window(1 << 24)
    open_, resp, final = {}, {}, None
    inbuf, i, eof = b"", 0, False
    try:
        s.sendall(c.data_to_send())
        end = time.time() + 60
        while not eof and time.time() < end:
            while final is None and not stop.is_set() and len(open_) < streams:
                row = ROWS[(k * 71 + i) % len(ROWS)]
                i += 1
                body = csv_row(row).encode()
                try:
                    sid = c.get_next_available_stream_id()
                    c.send_headers(sid, [(":method", "POST"), (":path", PATH),
                                         (":scheme", "http"), (":authority", "127.0.0.1"),
                                         ("content-type", CSV), ("accept", CSV),
                                         ("content-length", str(len(body)))])
                    c.send_data(sid, body, end_stream=True)
                except h2.exceptions.ProtocolError:
                    break
                open_[sid] = row
                resp[sid] = [None, None, b""]
            s.sendall(c.data_to_send())
            if not open_ and (stop.is_set() or final is not None):
                break
            s.settimeout(1.0)
            try:
                b = s.recv(1 << 16)
            except socket.timeout:
                continue
            except ConnectionResetError:
                b = b""
            if not b:
                eof = True
                break
            inbuf += b
            # Frame by frame: python-h2 closes its state machine on any
            # GOAWAY, even the shutdown notice, and would refuse the answers
            # RFC 9113 6.8 lets follow it: reopen it after each GOAWAY
            # (as tests/integration/test_sigterm.py does).
            while len(inbuf) >= 9:
                n = 9 + int.from_bytes(inbuf[:3], "big")
                if len(inbuf) < n:
                    break
                frame, inbuf = inbuf[:n], inbuf[n:]
                events = c.receive_data(frame)
                for ev in events:
                    if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id in resp:
                        h = dict(ev.headers)
                        resp[ev.stream_id][0] = int(h[b":status"])
                        resp[ev.stream_id][1] = \
                            (h.get(b"x-amzn-errortype") or b"").decode() or None
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in resp:
                            resp[ev.stream_id][2] += ev.data
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in open_:
                        st, et, data = resp.pop(ev.stream_id)
                        row = open_.pop(ev.stream_id)
                        tally.add(classify(st, et, data.decode(), row),
                                  "h2 %s %r" % (st, data[:120]))
                    elif isinstance(ev, h2.events.StreamReset) and ev.stream_id in open_:
                        open_.pop(ev.stream_id)
                        resp.pop(ev.stream_id, None)
                        # REFUSED_STREAM (7): never processed
                        tally.add("refused" if ev.error_code == 7 else "cut",
                                  "h2 stream %d reset %d" % (ev.stream_id, ev.error_code))
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        # the shutdown notice (last id 2^31-1) still takes
                        # streams; the final GOAWAY refuses those above its id
                        if ev.last_stream_id != MAX_H2_LAST:
                            final = ev.last_stream_id or 0
                            for sid in [x for x in open_ if x > final]:
                                open_.pop(sid)
                                resp.pop(sid, None)
                                tally.add("refused")
                if c.state_machine.state == ConnectionState.CLOSED and frame[3] == 7:
                    c.state_machine.state = ConnectionState.CLIENT_OPEN
                s.sendall(c.data_to_send())
    except (OSError, h2.exceptions.ProtocolError) as e:
        tally.notes.append("h2 connection: %r" % e)
    s.close()
    for sid in open_:
        # accepted (at or below the final last-stream-id, or no final GOAWAY)
        # and never answered
        tally.add("cut", "h2 stream %d unanswered (final GOAWAY last %s, eof %s)"
                  % (sid, final, eof))


def test_kube_down(yaml_text):
    section("6. the pod taken down under load: podman pod stop, then podman kube down")
    gw_id = inspect(GW, "{{.Id}}")
    m = re.search(r"terminationGracePeriodSeconds: (\d+)", yaml_text)
    grace = int(m.group(1)) if m else 30
    body = os.path.join(ROOT, "build", "k8s", "row.csv")
    with open(body, "w") as f:
        f.write(csv_row(ROWS[0]))
    h2l = subprocess.Popen(["h2load", "-n", "200000", "-c", "4", "-m", "8", "-d", body,
                            "-H", "content-type: text/csv", "-H", "accept: text/csv",
                            "http://127.0.0.1:%d%s" % (GW_PORT, PATH)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tally, stop = Tally(), threading.Event()
    ts = [threading.Thread(target=h1_loop, args=(tally, stop, k), daemon=True) for k in range(3)]
    ts += [threading.Thread(target=h2_loop, args=(tally, stop, k), daemon=True) for k in range(3)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    # What the kubelet does when a pod is deleted: SIGTERM to every
    # container, SIGKILL only after terminationGracePeriodSeconds. podman
    # 4.3's kube down alone stops the pod with a timeout of 0 (SIGKILL right
    # after SIGTERM: exit 137, no drain), so the pod is stopped with the
    # manifest's grace period first, and kube down removes it.
    t_down = time.time()
    rc, out, err = podman("pod", "stop", "--time", str(grace), POD, timeout=grace + 30)
    stop_s = time.time() - t_down
    check_eq(rc, 0, "podman pod stop --time %d under load: %s" % (grace, (out + err)[-300:]))
    stop.set()
    for t in ts:
        t.join(timeout=DEADLINE + 20)
    check(not any(t.is_alive() for t in ts), "every client finished")
    try:
        h2out, _ = h2l.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        h2l.kill()
        h2out, _ = h2l.communicate()
        check(False, "h2load ended after the pod stopped")
    code = inspect(GW, "{{.State.ExitCode}}")
    _, logs, errs = podman("logs", GW)
    rc, out = kube_down(yaml_text)
    check_eq(rc, 0, "podman kube down: %s" % out.strip()[-300:])
    c = tally.counts
    sent = sum(c.values())
    print("  pod stop took %.2f s; python clients: %d requests: %s" % (stop_s, sent, c))
    m = re.search(r"requests: .*", h2out)
    sc = re.search(r"status codes: .*", h2out)
    print("  h2load: %s; %s" % (m.group(0) if m else h2out[-300:], sc.group(0) if sc else ""))
    for b in tally.bad[:5]:
        print("  bad: %s" % b)
    for b in tally.notes[:3]:
        print("  note: %s" % b)
    for e in tally.errors:
        print("  an error answer: %s" % e)
    check(c.get("200", 0) > 0, "requests answered 200 before and during the drain")
    check_eq(c.get("200", 0) + c.get("error", 0) + c.get("refused", 0), sent,
             "every request sent: answered exactly (200 or an error answer) or never accepted")
    check_eq((c.get("cut", 0), c.get("bad", 0)), (0, 0),
             "no accepted request cut or answered wrong")
    if sc:
        st = dict((k, int(v)) for v, k in re.findall(r"(\d+) (\dxx)", sc.group(0)))
        check_eq(st.get("3xx", 0) + st.get("4xx", 0), 0,
                 "h2load: no 3xx or 4xx response (%s)" % sc.group(0))
    check_eq(code, "0", "the gateway container's exit status is 0 (podman inspect)")
    lines = (logs + errs).splitlines()
    # the container's log holds every run since kube play (test 4 restarted it)
    last = lines[max((i for i, l in enumerate(lines) if 'starting"' in l), default=0):]
    check(any('"msg":"signal 15: draining"' in l for l in last),
          "the gateway's log: SIGTERM received, draining")
    fin = [l for l in last if '"msg":"drained: ' in l]
    check(len(fin) == 1 and "none cut off" in fin[0],
          "the gateway's log: the drain ended with none cut off (%s)" % (fin[-1:] or last[-2:]))
    if fin:
        print("  " + fin[0])
    check(wait_for(pod_gone, timeout=10), "no pod %s left" % POD)
    rc, out, _ = podman("ps", "-a", "--filter", "id=%s" % gw_id, "--format", "{{.Names}}")
    check_eq(out.strip(), "", "no container left")


def test_images():
    section("0. the images on their own")
    rc, out, err = podman("run", "--rm", "localhost/infergate:test", "--config",
                          "/etc/infergate/infergate.conf", "--check-config")
    check_eq((rc, out.strip()),
             (0, "infergate: configuration /etc/infergate/infergate.conf OK (1 endpoints, "
                 "every model loaded)"),
             "the image's configuration and demo model pass --check-config")
    # The standalone overlay's configuration, with the web identity
    # environment EKS gives a pod of an IRSA ServiceAccount.
    conf = os.path.join(ROOT, "docker", "k8s", "standalone", "infergate.conf")
    rc, out, err = podman("run", "--rm", "-v", conf + ":/etc/infergate/pod/infergate.conf:ro",
                          "-e", "AWS_ROLE_ARN=arn:aws:iam::111122223333:role/x",
                          "-e", "AWS_WEB_IDENTITY_TOKEN_FILE=/etc/infergate/pod/infergate.conf",
                          "localhost/infergate:test", "--config",
                          "/etc/infergate/pod/infergate.conf", "--check-config")
    check_eq((rc, out.strip()),
             (0, "infergate: configuration /etc/infergate/pod/infergate.conf OK (2 endpoints, "
                 "every model loaded)"),
             "docker/k8s/standalone's configuration passes --check-config in the image")
    check("credentials from web identity" in err,
          "its sagemaker endpoint takes the IRSA web identity env: %s" % err.strip()[-300:])
    for image in ("localhost/infergate:test", "localhost/infergate-model:test"):
        user = sh(["podman", "image", "inspect", "--format", "{{.Config.User}}", image])[1]
        check_eq(user.strip(), "10001:10001", "%s runs as a non-root user" % image)
    hc = sh(["podman", "image", "inspect", "--format", "{{.Config.Healthcheck.Test}}",
             "localhost/infergate:test"])[1]
    check("/healthz" in hc, "the gateway image has a HEALTHCHECK on /healthz: %s" % hc.strip())
    # The image as docker/README.md runs it: its own command (the shipped
    # configuration on 0.0.0.0:8080, the admin API off), its HEALTHCHECK
    # run, the demo endpoint's predictions, SIGTERM -> exit 0.
    name = "infergate-k8s-e2e-default"
    podman("rm", "-f", name)
    rc, out, err = podman("run", "-d", "--name", name, "-p", "127.0.0.1:%d:8080" % DEFAULT_PORT,
                          "localhost/infergate:test")
    if check_eq(rc, 0, "podman run the image's default command: %s" % (out + err).strip()[-300:]):
        try:
            url = "http://127.0.0.1:%d" % DEFAULT_PORT
            up = wait_for(lambda: get_status(DEFAULT_PORT, "/healthz") == 200, timeout=15)
            check(up, "the default command serves /healthz: %s"
                  % ("".join(podman("logs", name)[1:])[-300:] if not up else ""))
            rc, out, err = podman("healthcheck", "run", name)
            check_eq(rc, 0, "the image's HEALTHCHECK (curl /healthz on $HEALTH_PORT) passes: %s"
                     % (out + err).strip()[-200:])
            st, hdrs, out = curl(url + "/endpoints/demo/invocations", csv_body(ROWS[:3]),
                                 ["Content-Type: text/csv", "Accept: text/csv"])
            check_eq((st, out), (200, expected_body(MODEL, ROWS[:3], CSV)),
                     "the default command's demo endpoint: exact predictions")
            podman("stop", "--time", "40", name, timeout=60)
            check_eq(inspect(name, "{{.State.ExitCode}}"), "0",
                     "the default command exits 0 on SIGTERM")
        finally:
            podman("rm", "-f", name)


def wait_pod_free():
    """Another run (load/bench-sidecar.sh, another make k8s-e2e) may hold the
    pod: wait for it rather than replace it under that run."""
    if pod_gone():
        return True
    print("-- pod %s exists: waiting up to 300 s for its run to end (or remove it: "
          "kubectl kustomize docker/k8s/test | podman kube down -)" % POD, flush=True)
    return wait_for(pod_gone, timeout=300, step=2)


def main():
    if os.geteuid() != 0:
        raise SystemExit("tests/k8s/test_k8s_e2e.py: run as root (podman kube play)")
    # make, or a CI runner, stopping this run with SIGTERM: take the pod down
    # all the same (the finally below).
    def on_term(*_):
        check(False, "interrupted by SIGTERM")
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)
    yaml_text = manifests()
    if not check(wait_pod_free(), "no other run holds pod %s" % POD):
        return
    played = False
    try:
        test_images()
        rc, out, err = podman("kube", "play", "--replace", "-", input=yaml_text, timeout=120)
        played = True
        if not check_eq(rc, 0, "podman kube play docker/k8s/test: %s" % (out + err)[-300:]):
            return
        check(wait_for(lambda: readyz() == (200, '{"status":"ready"}'), timeout=30),
              "/readyz 200 ready after kube play (%s)" % (readyz(),))
        for t in (test_predictions, test_readiness, test_model_killed, test_gateway_restart,
                  test_memory_flood):
            try:
                t()
            except Exception as e:  # one part's crash is a failure; the rest still run
                check(False, "%s raised %r" % (t.__name__, e))
        test_kube_down(yaml_text)
    finally:
        if played:
            if not pod_gone():
                kube_down(yaml_text)
            check(pod_gone(), "the pod is gone at the end")


if __name__ == "__main__":
    try:
        main()
    finally:
        r = iglib._results
        print("-- done (%.1f s)" % (time.time() - T0))
        print("k8s-e2e: %d passed, %d failed" % (r["passed"], r["failed"]), flush=True)
    sys.exit(1 if iglib._results["failed"] else 0)
