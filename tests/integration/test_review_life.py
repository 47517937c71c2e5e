"""An adversarial review of lifetimes around remote models: SIGTERM drains,
and endpoints created, updated and deleted through the admin API while
their model (an http:// container, or a bring-your-own serve program the
gateway starts) has calls out. Each check says what should happen;
1, 2, 4 and 5 failed before their fix.

1. UpdateEndpoint of an endpoint served by a serve program, while a
   request routed to the old variant waits for its answer, with a call
   longer than drain_timeout_ms (a batch transform, a large model): the
   old serve program was stopped drain_timeout_ms after the switch,
   whatever the retired variant still held (src/admin/deploy.c,
   on_retired_tick), so the request failed with 503 ServiceUnavailable
   ("cannot be reached: Couldn't connect to server"), where
   docs/admin.md says "requests already routed to the old variants finish
   there ... No request fails for the switch" and that the child is
   stopped "when the variant is no longer served and its requests are
   answered". With the defaults (drain_timeout_ms 30 s, request_timeout_ms
   60 s) any call over 30 s failed so at every update. The old program
   must still stop once its requests are answered.
2. The same for DeleteEndpoint: the document goes after drain_timeout_ms,
   and docs/limits.md says "requests still held finish on the retired
   variants"; the serve program was stopped under them.
3. Guarantees that held: SIGTERM twice while calls are in retry backoff,
   being split, hanging and throttled (every request answered exactly
   once, exit 0, no sanitizer report); UpdateEndpoint flapping between two
   containers under load, and SIGTERM right after an update (every request
   answered 200, exit 0); no fd left behind by the flapping.
4. /readyz while an update's old variant still answers a request it holds
   (a model that hangs: up to request_timeout_ms) and the one model served
   goes down: "not ready" (503) needs every endpoint down, and the count
   compared the endpoints down (retired variants skipped) with every entry
   of the list (retired ones included), so the gateway answered 200
   "degraded" and stayed in its Service while no endpoint could take a
   request.
5. A second SIGTERM while the gateway tears down after a clean drain (the
   admin module stopping serve programs: about a second for one that
   ignores SIGTERM): main.c freed its signal events as the loop ended,
   which put back the default action, so the second SIGTERM killed the
   gateway (exit status 143, not 0; the rest of the teardown skipped).

Run: INFERGATE_BIN=bin/infergate-san /usr/bin/python3 tests/integration/test_review_life.py
(about 30 s; under 60 s with the sanitizer build)."""

import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import AdminGateway, Gateway, ModelHandler, check, check_eq, finish  # noqa: E402
from test_admin_adversary import (call, config, invoke, model, procs_below,  # noqa: E402
                                  wait_ep)
from test_review_upstream2 import CSV, Hostile, lines_of  # noqa: E402
from test_upstream_adversary import ep_conf, wait_ready  # noqa: E402

T0 = time.time()
EXEC_DIR = tempfile.mkdtemp(prefix="ig-life-")
SLOW = os.path.join(EXEC_DIR, "slowserve")
# A serve program (the container contract): every row's prediction is
# BYO_TAG, after BYO_DELAY seconds a call.
with open(SLOW, "w") as f:
    f.write(r'''#!/usr/bin/env python3
import http.server, os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("BYO_IGNORE_TERM")
              else lambda *a: os._exit(0))
DELAY = float(os.environ.get("BYO_DELAY", "0"))
TAG = os.environ.get("BYO_TAG", "1")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, b"")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        rows = [l for l in self.rfile.read(n).decode().splitlines() if l.strip()]
        time.sleep(DELAY)
        self.answer(200, "".join(TAG + "\n" for _ in rows).encode())
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(
    ("127.0.0.1", int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))), H).serve_forever()
''')
os.chmod(SLOW, 0o755)


def log(msg):
    print("[%5.1f s] %s" % (time.time() - T0, msg), flush=True)


def clean_log(gw, what):
    err = gw.stderr()
    check("AddressSanitizer" not in err and "runtime error" not in err
          and "LeakSanitizer" not in err,
          "%s: no sanitizer report; stderr tail: %s" % (what, err[-3000:]))


def serve_children(gw):
    return [p for p, _ in procs_below(gw.proc.pid, SLOW, leaders=True)]


def wait_children(gw, n, timeout):
    end = time.time() + timeout
    while time.time() < end and len(serve_children(gw)) != n:
        time.sleep(0.05)
    return serve_children(gw)


def sent_requests(port, path, bodies, headers):
    """POST each of <bodies> on a connection of its own, in threads; ->
    (threads, results dict i -> (status, body) or (0, error), sent event
    set once every request has been written)."""
    res, lock, n_sent, all_sent = {}, threading.Lock(), [0], threading.Event()

    def one(i, body):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("POST", path, body=body.encode(), headers=headers(i))
        except OSError as e:
            r = (0, "not sent: %r" % e)
        else:
            r = None
        with lock:
            n_sent[0] += 1
            if n_sent[0] == len(bodies):
                all_sent.set()
        if r is None:
            try:
                resp = c.getresponse()
                r = (resp.status, resp.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as e:
                r = (0, repr(e))
        c.close()
        with lock:
            res[i] = r

    ths = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(bodies)]
    for t in ths:
        t.start()
    return ths, res, all_sent


def slow_request(gw, name, res, key):
    try:
        st, _, body = invoke(gw.port, name, body="1,2\n", timeout=30)
        res[key] = (st, body.decode("utf-8", "replace"))
    except Exception as e:  # noqa: BLE001 - no answer at all
        res[key] = (0, repr(e))


# 1, 2 ------------------------------------------------------------------------
def byo_lifetimes(gw):
    log("== 1. UpdateEndpoint while the old serve program answers a long call")
    # (7 s a call: the update's switch, a serve program's start, must come
    # drain_timeout_ms before the old answer; under the side-by-side tests'
    # load it once took 3.2 s)
    model(gw, "slow1", "file://" + SLOW, env={"BYO_DELAY": "7", "BYO_TAG": "1"})
    model(gw, "fast2", "file://" + SLOW, env={"BYO_TAG": "2"})
    config(gw, "c-slow1", [("AllTraffic", "slow1", 1.0)])
    config(gw, "c-fast2", [("AllTraffic", "fast2", 1.0)])
    call(gw, "CreateEndpoint", {"EndpointName": "byo", "EndpointConfigName": "c-slow1"})
    wait_ep(gw, "byo", ("InService",), 20, "create byo")
    res = {}
    t = threading.Thread(target=slow_request, args=(gw, "byo", res, "old"))
    t0 = time.time()
    t.start()
    time.sleep(0.3)  # routed to the old variant, its call out
    st = call(gw, "UpdateEndpoint", {"EndpointName": "byo", "EndpointConfigName": "c-fast2"})
    check_eq(st[0], 200, "UpdateEndpoint answered")
    wait_ep(gw, "byo", ("InService",), 20, "update byo")
    switched = time.time() - t0
    check(switched + 1.5 < 7.0, "1: the switch (%.1f s) came over drain_timeout_ms before the "
          "old variant's answer (7 s)" % switched)
    t.join()
    check_eq(res.get("old"), (200, '{"predictions":[1]}'),
             "1: the request routed to the old variant before the update is answered there, "
             "its serve program not stopped under it (drain_timeout_ms 1 s < its 7 s call)")
    st, _, body = invoke(gw.port, "byo", body="1,2\n")
    check_eq((st, body), (200, b'{"predictions":[2]}'), "1: new requests go to the new variant")
    left = wait_children(gw, 1, 5)
    check_eq(len(left), 1, "1: the old serve program stopped once its request was answered")

    log("== 2. DeleteEndpoint while the serve program answers a long call")
    call(gw, "UpdateEndpoint", {"EndpointName": "byo", "EndpointConfigName": "c-slow1"})
    wait_ep(gw, "byo", ("InService",), 20, "update byo back")
    wait_children(gw, 1, 5)
    t = threading.Thread(target=slow_request, args=(gw, "byo", res, "del"))
    t.start()
    time.sleep(0.3)
    st = call(gw, "DeleteEndpoint", {"EndpointName": "byo"})
    check_eq(st[0], 200, "DeleteEndpoint answered")
    t.join()
    check_eq(res.get("del"), (200, '{"predictions":[1]}'),
             "2: the request held when the endpoint was deleted is answered (docs/limits.md: "
             "requests still held finish on the retired variants)")
    wait_ep(gw, "byo", ("gone",), 10, "delete byo")
    check_eq(wait_children(gw, 0, 5), [], "2: no serve program left after the delete")


# 4 ---------------------------------------------------------------------------
class PingContainer:
    """A container on loopback: /ping answers <self.ping> (200 until set),
    /invocations "5" a row after <delay> s."""

    def __init__(self, delay):
        outer = self
        self.ping = 200

        class H(ModelHandler):
            def do_GET(self):
                self.send(outer.ping if self.path == "/ping" else 404, "")

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                rows = lines_of(self.rfile.read(n).decode())
                time.sleep(delay)
                self.send(200, "".join("5\n" for _ in rows))

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.srv.handle_error = lambda *a: None
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def readyz_retired(gw):
    log("== 4. /readyz with the served model down while a retired variant still answers")
    old, new = PingContainer(5.0), PingContainer(0.0)
    try:
        model(gw, "rz-old", old.url)
        model(gw, "rz-new", new.url)
        config(gw, "rz-c-old", [("AllTraffic", "rz-old", 1.0)])
        config(gw, "rz-c-new", [("AllTraffic", "rz-new", 1.0)])
        call(gw, "CreateEndpoint", {"EndpointName": "rz", "EndpointConfigName": "rz-c-old"})
        wait_ep(gw, "rz", ("InService",), 15, "create rz")
        res = {}
        t = threading.Thread(target=slow_request, args=(gw, "rz", res, "old"))
        t.start()
        time.sleep(0.3)
        call(gw, "UpdateEndpoint", {"EndpointName": "rz", "EndpointConfigName": "rz-c-new"})
        wait_ep(gw, "rz", ("InService",), 15, "update rz")
        end = time.time() + 3  # the new variant's own first /ping
        while time.time() < end and readyz(gw)[1].get("status") != "ready":
            time.sleep(0.02)
        check_eq(readyz(gw), (200, {"status": "ready"}), "4: ready once the update is served")
        new.ping = 503  # the one model served goes down
        end, got = time.time() + 3, None
        while time.time() < end:
            got = readyz(gw)
            if got[1].get("status") != "ready":
                break
            time.sleep(0.05)
        held = t.is_alive()
        check(held, "4: the retired variant still held its request when /readyz was read")
        check_eq((got[0], got[1].get("status")), (503, "not ready"),
                 "4: /readyz 503 not ready when no endpoint can take a request (the retired "
                 "variant still answering one takes no new request); got %r" % (got,))
        t.join()
        check_eq(res.get("old"), (200, '{"predictions":[5]}'), "4: the held request answered")
        call(gw, "DeleteEndpoint", {"EndpointName": "rz"})
        wait_ep(gw, "rz", ("gone",), 10, "delete rz")
    finally:
        old.close()
        new.close()


# 3 ---------------------------------------------------------------------------
def flapping(gw):
    log("== 3b. UpdateEndpoint flapping between two containers under load, then SIGTERM")

    def fast(h, body):
        h.send(200, "".join("7\n" for _ in lines_of(body)))

    def slow(h, body):
        time.sleep(0.8)
        h.send(200, "".join("7\n" for _ in lines_of(body)))

    a, b = Hostile(fast), Hostile(slow)
    try:
        model(gw, "ca-m", a.url)
        model(gw, "cb-m", b.url)
        config(gw, "ca", [("AllTraffic", "ca-m", 1.0)])
        config(gw, "cb", [("AllTraffic", "cb-m", 1.0)])
        call(gw, "CreateEndpoint", {"EndpointName": "flap", "EndpointConfigName": "ca"})
        wait_ep(gw, "flap", ("InService",), 15, "create flap")
        fds0 = len(os.listdir("/proc/%d/fd" % gw.proc.pid))
        stop, res, lock = [False], [], threading.Lock()

        def loader():
            while not stop[0]:
                try:
                    st, _, body = invoke(gw.port, "flap", body="1,2\n", timeout=30)
                    r = (st, body)
                except Exception as e:  # noqa: BLE001
                    r = (0, repr(e))
                with lock:
                    res.append(r)

        ths = [threading.Thread(target=loader) for _ in range(4)]
        for t in ths:
            t.start()
        for i in range(8):
            call(gw, "UpdateEndpoint", {"EndpointName": "flap",
                                        "EndpointConfigName": "cb" if i % 2 == 0 else "ca"})
            wait_ep(gw, "flap", ("InService",), 15, "flap %d" % i)
        stop[0] = True
        for t in ths:
            t.join()
        time.sleep(1.5)  # the retired variants freed
        fds1 = len(os.listdir("/proc/%d/fd" % gw.proc.pid))
        bad = [r for r in res if r != (200, b'{"predictions":[7]}')]
        check(len(res) >= 8 and not bad, "3b: %d requests across 8 updates, all 200: %r"
              % (len(res), bad[:3]))
        check(fds1 <= fds0 + 2, "3b: no fd left behind by 8 updates (%d before, %d after)"
              % (fds0, fds1))
        # SIGTERM twice during an update, requests out on the variant it
        # retires (the slow container: 0.8 s a call)
        call(gw, "UpdateEndpoint", {"EndpointName": "flap", "EndpointConfigName": "cb"})
        wait_ep(gw, "flap", ("InService",), 15, "flap to cb")
        ths, res2, sent = sent_requests(gw.port, "/endpoints/flap/invocations",
                                        ["1,2\n"] * 3, lambda i: {"Content-Type": "text/csv"})
        check(sent.wait(10), "3b: the requests sent")
        call(gw, "UpdateEndpoint", {"EndpointName": "flap", "EndpointConfigName": "ca"})
        more, res3, sent3 = sent_requests(gw.port, "/endpoints/flap/invocations",
                                          ["1,2\n"] * 3, lambda i: {"Content-Type": "text/csv"})
        check(sent.wait(10) and sent3.wait(10), "3b: the requests sent")
        time.sleep(0.15)  # read by the gateway
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=30)
        for t in ths + more:
            t.join()
        check_eq(code, 0, "3b: SIGTERM twice during an UpdateEndpoint, requests out: exit 0")
        got = sorted(list(res2.values()) + list(res3.values()))
        check_eq(got, [(200, '{"predictions":[7]}')] * 6,
                 "3b: every request sent before SIGTERM answered")
        clean_log(gw, "3b")
    finally:
        a.close()
        b.close()


def sigterm_backoff():
    log("== 3a. SIGTERM twice while calls are in backoff, split, hanging, throttled")

    def answer(h, body):
        ls = lines_of(body)
        if any(l.startswith("h") for l in ls):
            time.sleep(0.6)
        elif any(l.startswith("r") for l in ls):
            return h.send(503, "busy")
        elif any(l.startswith("t") for l in ls):
            return h.send(429, "slow down")
        elif any(l.startswith("bad") for l in ls):
            return h.send(400, "bad row")
        h.send(200, "".join("p" + l + "\n" for l in ls))

    hs = Hostile(answer)
    try:
        for rnd in range(2):
            gw = Gateway({"m": ep_conf(hs.url, max_inflight=4, max_delay_us=30000,
                                       upstream_timeout_ms=1000, retry_max=2, retry_base_ms=300,
                                       retry_max_ms=500, breaker_failures=50)},
                         drain_timeout_ms=10000)
            wait_ready(gw)
            kinds = ["1,2", "r", "t", "bad", "h", "3,4", "5,6"]
            rows = ["%s,%d" % (kinds[i % len(kinds)], i) for i in range(28)]
            # each a call of its own (forwarded headers): its own verdict
            ths, got, sent = sent_requests(
                gw.port, "/endpoints/m/invocations", [r + "\n" for r in rows],
                lambda i: {"Content-Type": CSV, "Accept": CSV,
                           "X-Amzn-SageMaker-Custom-Attributes": "c%d" % i})
            check(sent.wait(10), "3a.%d: the requests sent" % rnd)
            time.sleep(0.25 + 0.2 * rnd)  # calls out, in backoff, split
            gw.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            gw.proc.send_signal(signal.SIGTERM)
            code = gw.proc.wait(timeout=30)
            for t in ths:
                t.join()
            res = {i: (rows[i], got.get(i)) for i in range(28)}
            check_eq(code, 0, "3a.%d: exit 0 after the drain" % rnd)
            want = {"r": 424, "t": 400, "bad": 424}
            wrong = [(row, r) for row, r in res.values()
                     if r[0] != want.get(row.split(",")[0], 200)
                     or (r[0] == 200 and r[1] != "p" + row + "\n")]
            check(not wrong, "3a.%d: all 28 requests answered, each its own "
                  "answer: %r" % (rnd, wrong[:4]))
            clean_log(gw, "3a.%d" % rnd)
    finally:
        hs.close()


# 5 ---------------------------------------------------------------------------
def second_sigterm_teardown():
    log("== 5. a second SIGTERM while the gateway tears down after its drain")
    gw = AdminGateway(drain_timeout_ms=1000, admin_exec_dirs=EXEC_DIR)
    try:
        # a serve program that ignores SIGTERM: the teardown waits for it
        # (SIGKILL after its grace), a second or so after the drain
        model(gw, "deaf", "file://" + SLOW, env={"BYO_IGNORE_TERM": "1", "BYO_TAG": "3"})
        config(gw, "c-deaf", [("AllTraffic", "deaf", 1.0)])
        call(gw, "CreateEndpoint", {"EndpointName": "deaf", "EndpointConfigName": "c-deaf"})
        wait_ep(gw, "deaf", ("InService",), 20, "create deaf")
        st, _, body = invoke(gw.port, "deaf", body="1\n")
        check_eq((st, body), (200, b'{"predictions":[3]}'), "5: served")
        pid = gw.proc.pid
        gw.proc.send_signal(signal.SIGTERM)
        # idle: the drain is over at once; the teardown then waits about
        # 1 s for the program (SIGTERM, SIGKILL after its grace)
        time.sleep(0.4)
        tearing = gw.alive()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=20)
        check(tearing, "5: the second SIGTERM came during the teardown")
        check_eq(code, 0, "5: a clean drain exits 0, a second SIGTERM during the teardown "
                 "(the serve programs stopped, the model directories removed) notwithstanding")
        check_eq([d for d in os.listdir(os.path.join(gw.data_dir, "models"))
                  if d.startswith("%d-" % pid)], [],
                 "5: the serve program's model directory removed at exit")
        clean_log(gw, "5")
    finally:
        if gw.alive():
            gw.stop()


def main():
    sigterm_backoff()
    second_sigterm_teardown()
    gw = AdminGateway(drain_timeout_ms=1000, admin_exec_dirs=EXEC_DIR)
    try:
        byo_lifetimes(gw)
        readyz_retired(gw)
        flapping(gw)
    finally:
        if gw.alive():
            gw.stop()
    log("done")
    finish()


if __name__ == "__main__":
    main()
