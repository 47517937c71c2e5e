"""An adversarial read of the remote upstreams (upstream_remote.c,
curl_loop.c), as checks against the real bin/infergate in front of a
hostile model container: a tiny Python HTTP/1.1 server on loopback whose
behaviour each check sets. A check that fails here documents a bug
(see the report of the review); each says what should happen.

1. /execution-parameters slower than the /ping period: the gateway must
   not re-add a transfer still running (small_get on ru->exec), and must
   shut down clean (no use after free of the easy handle, no hang);
1b. /execution-parameters answered 503, then 500: asked again after the
   next good ping (not taken for "not offered"); a container restarted
   (its /ping failing a while) with other parameters: read again;
2. one request whose rows the model all refuses: the bisection must stay
   within 2*log2(rows)+1 calls (the request fails whole anyway), and a
   good client on the same endpoint must not wait behind it;
2b. a refused request of many rows batched with good ones: the bisection
   cuts between requests, never inside one (2s - 1 calls for s requests);
2c. a row holding a line break (a CSV quoted field with one, a bare CR, a
   form feed, a vertical tab, U+2028: what Python's splitlines() cuts at)
   that a line-reading model takes as two rows, batched with other
   requests: only its own request fails (the wrong count), the others are
   answered;
2d. such a row (a vertical tab) in a transform stream's record, batched
   with another client's request: that request is answered;
3. a half-open breaker whose probe gets an answer past the 64 MiB cap: the
   breaker must not stay half-open forever (every later request refused
   while /readyz says ready);
3b. a half-open breaker's probe batch whose requests forward headers (a
   call each): one call goes, not one per request;
3c. batches the open breaker refuses are not sent: they add nothing to the
   retry budget;
3d. the open breaker's message counts the failed calls that opened it (a
   late success of an older call does not make it "0 failed calls");
4. a model's long non-ASCII error message: the 424 ModelError must keep
   Message and OriginalMessage (a cut in the middle of a UTF-8 sequence
   must not drop them);
5. an answer with more than 64 KiB of headers: refused at once, saying so;
   a 200 JSON (or JSON Lines) answer that is not JSON: never passed to the client as a
   200 with an invalid body;
6. a CSV answer with CRLF and no final newline, and a JSON answer with
   nested arrays and strings holding brackets: exact predictions, each on
   its own row (the parser must not shift them);
7. clients that reset while their rows sit in a backoff or a bisection:
   the gateway keeps serving, no leak, exit 0 (run under ASan too);
11. a flood of one-row requests that each go in a call of their own
   (forwarded headers, a CSV quoted newline) in front of a slow model: a
   plain request of the same endpoint is not held until every one of
   them has had its call;
12. a client whose rows make the model raise (500, after the retries):
   only its requests fail; the breaker stays closed, the other clients
   are served (a 503, a timeout, a broken connection still count), even
   when its requests come one after another on a quiet endpoint, more of
   them than breaker_failures: a row the model answered well before (the
   canary) is sent first, and its answer says the model is up; it also
   closes a half-open breaker whose probe such a request took;
12b. such a request batched with good ones: split out as a refused one
   is, only it fails (the others are not answered the model's 500 about
   another client's row).
12c. a model that answers 500 to every call (its model failed to load):
   the breaker opens after breaker_failures such requests, and a probe it
   answers 500 does not close it; a model that answered well, then raises
   on every call (the canary too), opens it as well.
14. a connection one of whose requests the model refused (or raised on):
   its next requests are batched apart for a while, so that its next bad
   row is not batched with other clients' rows (a split of their batch,
   more calls and a wait for them); its good rows are answered; a new
   connection from its address is batched apart too;
14b. requests batched with a refused row: each answered as soon as its own
   half of the split is, not when the whole split is over;
14c. such an early answer cancels the request's other batch, whose cancel
   starts a queued call of the same split that fails at once (the memory
   budget full): no use after free (run under ASan);
15. an Accept of many quoted strings before a comma: parsed in linear
   time (the loop is blocked meanwhile);
13. the headers a container is handed: the custom attributes and the
   inference id, as SageMaker hands them, never the target variant (so
   requests naming it are batched as any).

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_upstream_adversary.py
"""

import contextlib
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, ModelHandler, check, check_eq, finish, h1_exchange  # noqa: E402

CSV = "text/csv"
JSON = "application/json"
JSONL = "application/jsonlines"


class Hostile:
    """A model container on loopback: /ping, /execution-parameters and
    /invocations answered as <mode> says; every call logged."""

    def __init__(self):
        self.mode = "echo"
        self.exec_sleep = None  # seconds /execution-parameters waits, None: 404
        self.delay = 0.0        # seconds each /invocations waits
        self.calls = []         # bodies of /invocations
        self.sm_hdrs = []       # their X-Amzn-SageMaker-* headers (names in lower case)
        self.exec_calls = 0
        self.exec_codes = []    # statuses /execution-parameters answers first, one a GET
        self.exec_max = 4       # its MaxConcurrentTransforms
        self.ping_code = 200
        self.stall_s = 6.0
        self.lock = threading.Lock()
        owner = self

        class H(ModelHandler):

            def do_GET(self):
                if self.path == "/ping":
                    self.send(owner.ping_code, "", "application/json")
                elif self.path == "/execution-parameters":
                    with owner.lock:
                        owner.exec_calls += 1
                        code = owner.exec_codes.pop(0) if owner.exec_codes else None
                    if code is not None:
                        self.send(code, "not now")
                        return
                    if owner.exec_sleep is None:
                        self.send(404, "no")
                        return
                    said = owner.exec_max  # this container's, whatever comes after
                    time.sleep(owner.exec_sleep)
                    self.send(200, '{"MaxConcurrentTransforms": %d, "BatchStrategy": '
                              '"MULTI_RECORD", "MaxPayloadInMB": 6}' % said,
                              "application/json")
                else:
                    self.send(404, "no")

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode("utf-8", "replace")
                with owner.lock:
                    owner.calls.append(body)
                    owner.sm_hdrs.append({k.lower(): v for k, v in self.headers.items()
                                          if k.lower().startswith("x-amzn-sagemaker-")})
                if owner.delay:
                    time.sleep(owner.delay)
                owner.answer(self, body)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def answer(self, h, body):
        m = self.mode
        lines = [l for l in body.split("\n") if l != ""]
        if m == "echo":  # each row's own bytes back, or 400 when a row is poison
            if any(l.startswith("666") for l in lines):
                h.send(400, "row 666 is poison")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "lines":  # a row a line as Python's splitlines() reads them (CR too)
            h.send(200, "".join("p" + l + "\n" for l in body.splitlines()))
        elif m == "crlf":  # CRLF line ends and no final newline
            h.send(200, "\r\n".join("p" + l for l in lines))
        elif m == "500":
            h.send(500, "down")
        elif m == "503":  # down: what opens the breaker
            h.send(503, "down")
        elif m == "p500":  # a row "666..." makes the model raise: 500; the others answered
            if any(l.startswith("666") for l in lines):
                h.send(500, "row 666 crashes the model")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "slowok":  # a call of rows "slow..." answered late and well, others 503
            if lines and lines[0].startswith("slow"):
                time.sleep(0.5)
                h.send(200, "".join("p" + l + "\n" for l in lines))
            else:
                h.send(503, "down")
        elif m == "429":
            h.send(429, "slow down")
        elif m == "bighdr":  # 80 KiB of headers, past the gateway's 64 KiB (libcurl's: 300)
            h.send(200, "".join("p" + l + "\n" for l in lines), "text/csv",
                   [("X-Pad-%d" % i, "a" * 1000) for i in range(80)])
        elif m == "huge":  # past the gateway's 64 MiB answer cap
            h.send(200, b"1" * ((64 << 20) + 4096))
        elif m == "utf8":
            h.send(400, "x" + "\u00e9" * 1000, "text/plain; charset=utf-8")
        elif m == "badjson":
            h.send(200, '{"predictions": [abc, [}]}', JSON)
        elif m == "badjsonl":  # a line each, but not JSON
            h.send(200, "".join("abc{\n" for l in lines), JSONL)
        elif m == "nestedjson":
            n = json.loads(body)["instances"]
            preds = [{"label": "a]b[\"}", "v": [[i], {"k": "]"}]} for i in range(len(n))]
            h.send(200, json.dumps({"predictions": preds, "extra": "[["}), JSON)
        elif m == "smthrottle":  # SageMaker's own throttling
            h.send(400, '{"message":"Rate exceeded"}', "application/json",
                   [("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/")])
        elif m == "sm503":  # SageMaker itself unavailable (not the model)
            h.send(503, '{"message":"The service is unavailable."}', "application/json",
                   [("x-amzn-ErrorType", "ServiceUnavailable:http://internal.amazon.com/coral/")])
        elif m == "sm530":  # SageMaker's InternalDependencyException
            h.send(530, '{"message":"An internal dependency failed."}', "application/json",
                   [("x-amzn-ErrorType",
                     "InternalDependencyException:http://internal.amazon.com/coral/")])
        elif m == "smcut400":  # a model's 400 past a one-row call's cap (320 KiB) by 10 bytes
            cap = (256 << 10) + (64 << 10)
            head = '{"ErrorCode":"CLIENT_ERROR_FROM_MODEL","Message":"Received client error ' \
                   '(400) from primary with message \\"E...\\".","OriginalMessage":"'
            end = '","OriginalStatusCode":400}'
            h.send(424, head + "E" * (cap + 10 - len(head) - len(end)) + end, JSON,
                   [("x-amzn-ErrorType", "ModelError:http://internal.amazon.com/coral/")])
        elif m == "stall":  # a large answer, then nothing more until the timeout
            h.send_response(200)
            h.send_header("Content-Type", "text/csv")
            h.send_header("Content-Length", str((40 << 20) + 2))
            h.end_headers()
            try:
                h.wfile.write(b"1" * (40 << 20))
                h.wfile.flush()
            except OSError:
                return
            time.sleep(self.stall_s)
        else:
            h.send(500, "unknown mode")

    def ncalls(self):
        with self.lock:
            return len(self.calls)

    def reset(self, mode="echo"):
        with self.lock:
            self.calls = []
        self.mode = mode
        self.delay = 0.0

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def post(gw, ep, body, ctype=CSV, accept=CSV, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
    h = {"Content-Type": ctype, "Accept": accept}
    h.update(headers or {})
    c.request("POST", "/endpoints/%s/invocations" % ep, body=body.encode(), headers=h)
    r = c.getresponse()
    out = r.read().decode("utf-8", "replace")
    hd = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hd, out


def together(fn, keys):
    """fn(key) for each of <keys> at once, from a thread each: key -> what
    it returned."""
    res = {}

    def one(k):
        res[k] = fn(k)

    ts = [threading.Thread(target=one, args=(k,)) for k in keys]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


def post_together(gw, ep, bodies):
    """POST each of <bodies> (name -> CSV body) at once (with max_delay_us
    long enough, in one batch): name -> post()'s answer."""
    return together(lambda k: post(gw, ep, bodies[k]), bodies)


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_ready(gw, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if readyz(gw)[0] == 200:
            return True
        time.sleep(0.05)
    return False


def ep_conf(model, **kw):
    c = {"model": model, "content_type": CSV, "accept": CSV, "max_delay_us": "1000",
         "upstream_timeout_ms": "5000", "retry_base_ms": "5", "retry_max_ms": "20"}
    c.update({k: str(v) for k, v in kw.items()})
    return c


def section(name):
    print("-- " + name, flush=True)


def stop_clean(gw, what):
    code = gw.stop(timeout=20)
    err = gw.stderr()
    check(code == 0, "%s: gateway exits 0 on SIGTERM (got %d)" % (what, code))
    check("AddressSanitizer" not in err and "runtime error" not in err,
          "%s: no sanitizer report; stderr tail: %s" % (what, err[-3000:]))


# 1 ---------------------------------------------------------------------------
def test_slow_exec_params():
    section("1. /execution-parameters slower than the /ping period")
    hs = Hostile()
    hs.exec_sleep = 1.7  # > REMOTE_PING_US (1 s), < REMOTE_PING_TIMEOUT_MS (2 s)
    gw = Gateway({"m": ep_conf(hs.url)})
    try:
        wait_ready(gw)
        # Several pings come back while the first exec still runs; a call
        # every 150 ms meanwhile must get its own answer, never the answer
        # of a GET the gateway abandoned on a kept-alive connection.
        wrong = []
        end = time.time() + 4.5
        i = 0
        while time.time() < end:
            st, _, out = post(gw, "m", "%d,2\n" % i)
            if (st, out) != (200, "p%d,2\n" % i):
                wrong.append((i, st, out[:120]))
            i += 1
            time.sleep(0.15)
        check_eq(wrong, [], "every call answered with its own prediction while "
                 "/execution-parameters is slow")
        check(gw.alive(), "the gateway is alive")
        # Exactly one GET /execution-parameters in flight at a time: with a
        # 1.7 s answer, in 4.5 s at most 3 can have been asked for.
        check(hs.exec_calls <= 3,
              "one /execution-parameters at a time (asked %d times in 4.5 s)" % hs.exec_calls)
    finally:
        stop_clean(gw, "slow /execution-parameters")
        hs.close()


def test_exec_params_again():
    section("1b. /execution-parameters answered 503, then a container restarted with others")
    hs = Hostile()
    hs.exec_sleep = 0.0
    hs.exec_codes = [503, 500]
    os.environ["INFERGATE_LOG_LEVEL"] = "info"  # the lines read below (beats the file's warn)
    try:
        gw = Gateway({"m": ep_conf(hs.url)})
    finally:
        del os.environ["INFERGATE_LOG_LEVEL"]

    def said(n):
        return ("execution parameters: %d calls at once, 6291456 bytes a call" % n
                in gw.stderr())
    try:
        wait_ready(gw)
        deadline = time.time() + 6
        while not said(4) and time.time() < deadline:
            time.sleep(0.1)
        check(said(4), "a 503, then a 500: asked again after the next ping, and read (log: %s)"
              % gw.stderr()[-600:])
        check_eq(hs.exec_calls, 3, "asked three times")
        # the container restarts (its /ping fails a while) with other parameters
        hs.exec_max = 2
        hs.ping_code = 503
        deadline = time.time() + 5
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.1)
        hs.ping_code = 200
        deadline = time.time() + 6
        while not said(2) and time.time() < deadline:
            time.sleep(0.1)
        check(said(2), "ready again after a failing /ping: read again, the new container's")
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "served")
        # Its /ping fails while its (slow) /execution-parameters is out, and
        # the container that comes back says 3: the answer of the one before
        # (1) arrives after /ping failed and must not set the caps.
        hs.exec_max = 1
        hs.exec_sleep = 1.8  # < the 2 s timeout; the failing ping comes within 1.1 s
        hs.ping_code = 503
        deadline = time.time() + 5
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.05)
        asked = hs.exec_calls
        hs.ping_code = 200
        deadline = time.time() + 3
        while hs.exec_calls == asked and time.time() < deadline:
            time.sleep(0.02)
        check_eq(hs.exec_calls, asked + 1, "ready again: asked (the slow one)")
        hs.ping_code = 503
        deadline = time.time() + 3
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.02)
        check(readyz(gw)[0] != 200, "its /ping fails while /execution-parameters is out")
        hs.exec_max, hs.exec_sleep, hs.ping_code = 3, 0.0, 200
        deadline = time.time() + 6
        while not said(3) and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # the old answer (1.8 s) is due by now
        check(said(3), "the container back reads 3 (log: %s)" % gw.stderr()[-600:])
        check(not said(1), "the answer from before /ping failed set no caps (log: %s)"
              % gw.stderr()[-600:])
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "served")
    finally:
        stop_clean(gw, "execution parameters again")
        hs.close()


# 2 ---------------------------------------------------------------------------
def test_bisection_amplification():
    section("2. one request whose 256 rows the model all refuses")
    hs = Hostile()
    hs.delay = 0.02
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=2, max_batch_rows=256)})
    try:
        wait_ready(gw)
        hs.reset()
        hs.delay = 0.02
        res = {}

        def bad():
            res["bad"] = post(gw, "m", "".join("666,%d\n" % i for i in range(256)))

        t = threading.Thread(target=bad)
        t.start()
        time.sleep(0.6)
        t0 = time.time()
        good = post(gw, "m", "1,2\n")
        good_s = time.time() - t0
        t.join()
        st, _, body = res["bad"]
        check_eq(st, 424, "the poisoned request: 424 ModelError")
        check_eq((good[0], good[2]), (200, "p1,2\n"), "the good request answered")
        n = hs.ncalls() - 1  # the good request's own call
        check(n <= 2 * 8 + 1,
              "calls for one request of 256 refused rows <= 2*log2(256)+1 = 17 (got %d: the "
              "bisection goes on below one request, whose rows fail together anyway)" % n)
        check(good_s < 0.5,
              "a good request is not stuck behind another's bisection (%.2f s)" % good_s)
    finally:
        stop_clean(gw, "bisection")
        hs.close()


@contextlib.contextmanager
def hostile_gateway(mode, what, **kw):
    """A hostile container in <mode> behind a gateway whose endpoint "m"
    has the options <kw> (ep_conf); stopped clean (<what>) on the way out."""
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url, **kw)})
    try:
        wait_ready(gw)
        hs.reset(mode)
        yield hs, gw
    finally:
        stop_clean(gw, what)
        hs.close()


def test_bisection_whole_requests():
    section("2b. a request of 62 refused rows batched with two good one-row requests")
    # max_delay_us: requests sent together share a batch
    with hostile_gateway("echo", "bisection, whole requests", max_delay_us=200000) as (hs, gw):
        res = post_together(gw, "m", {"bad": "".join("666,%d\n" % i for i in range(62)),
                                       "a": "1,1\n", "b": "2,2\n"})
        check_eq([(k, res[k][0]) for k in ("bad", "a", "b")], [("bad", 424), ("a", 200), ("b", 200)],
                 "the refused request fails, the others are answered")
        check(hs.ncalls() <= 2 * 3 - 1,
              "a batch of 3 requests costs at most 2*3-1 = 5 calls, as docs/upstreams.md says "
              "(got %d: the bisection cuts a request in pieces)" % hs.ncalls())


def test_line_break_rows():
    section("2c. rows holding a line break batched with good one-row requests")
    with hostile_gateway("lines", "rows holding a line break", max_delay_us=200000) as (hs, gw):
        # valid CSV, each one row: a quoted field with a newline, a bare CR,
        # and what Python's splitlines() (this model's reader) also cuts
        # at: a form feed, a vertical tab, U+2028
        odd = {"quoted": '"7\n8",9\n', "cr": "5\r6,7\n", "ff": "3\x0c4,5\n",
               "vt": "8\x0b9,3\n", "ls": "6\u20287,8\n",
               # the gateway reads a row 8 bytes at a time: a break inside
               # the first word, and U+2028 across the first two
               "ffword": "123\x0c4567,1234567890\n", "lsacross": "1234567\u20288,123456\n"}
        res = post_together(gw, "m", dict(odd, a="1,1\n", b="2,2\n"))
        for k in odd:
            st, _, out = res[k]
            check(st == 500 and "The model returned 2 predictions for 1 rows" in out,
                  "%s: the model read the row as two: its own request fails, 500 saying so "
                  "(got %d %s)" % (k, st, out[:200]))
        check_eq([(k, res[k][0], res[k][2]) for k in ("a", "b")],
                 [("a", 200, "p1,1\n"), ("b", 200, "p2,2\n")],
                 "the requests batched with them: answered exactly")
        check(not any(("1,1" in c) and any(v.rstrip("\n") in c for v in odd.values())
                      for c in hs.calls),
              "a row with a line break never shares a call with another request's rows "
              "(calls: %r)" % hs.calls)


def test_line_break_stream():
    section("2d. a transform stream's row holding a vertical tab batched with a request")
    with hostile_gateway("lines", "stream row with a line break", max_delay_us=200000) as (hs, gw):
        def one(k):
            if k == "a":
                return post(gw, "m", "1,1\n")
            c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            c.request("POST", "/transform/m", body=b"8\x0b9,3\n",
                      headers={"Content-Type": CSV, "Accept": CSV})
            r = c.getresponse()
            out = r.read().decode("utf-8", "replace")
            c.close()
            return r.status, {}, out

        res = together(one, ["stream", "a"])
        check_eq((res["a"][0], res["a"][2]), (200, "p1,1\n"),
                 "the request batched with the stream's row: answered exactly, not failed by "
                 "the count the stream's row got wrong (stream: %r)" % (res["stream"],))


# 3 ---------------------------------------------------------------------------
def test_breaker_probe_too_large():
    for probe_mode, want_st, what in (("429", 400, "throttled (429)"),
                                      ("huge", 500, "answered past the 64 MiB cap")):
        section("3. half-open breaker, the probe " + what)
        hs = Hostile()
        gw = Gateway({"m": ep_conf(hs.url, breaker_failures=2, breaker_open_ms=300,
                                   retry_max=0)})
        try:
            wait_ready(gw)
            hs.reset("503")
            for _ in range(3):
                post(gw, "m", "1,2\n")
            st, _, body = post(gw, "m", "1,2\n")
            check_eq(st, 503, "breaker open: ServiceUnavailable at once")
            time.sleep(0.4)
            hs.reset(probe_mode)
            st, _, body = post(gw, "m", "1,2\n")
            check_eq(st, want_st, "the probe " + what + ": " + body[:160])
            hs.reset("echo")
            time.sleep(1.0)  # > breaker_open_ms: the next request may be a probe
            st, _, body = post(gw, "m", "1,2\n")
            check_eq((st, body), (200, "p1,2\n"),
                     "probe %s, then the model is back: the breaker closes" % what)
            rz = readyz(gw)
            check(not (rz[0] == 200 and st == 503),
                  "/readyz does not say ready while every request is refused: %s" % (rz,))
        finally:
            stop_clean(gw, "breaker probe " + probe_mode)
            hs.close()


# 3b --------------------------------------------------------------------------
def test_half_open_one_call():
    section("3b. half-open breaker, the probe batch holds requests with headers of their own")
    with hostile_gateway("503", "half-open, one call", breaker_failures=2, breaker_open_ms=300,
                         retry_max=0, max_delay_us=200000) as (hs, gw):
        for _ in range(3):
            post(gw, "m", "1,2\n")
        time.sleep(0.4)  # > breaker_open_ms: half-open, the next batch is the probe
        hs.reset("503")
        res = list(together(lambda i: post(gw, "m", "%d,1\n" % i, headers={
            "X-Amzn-SageMaker-Custom-Attributes": "a%d" % i}), range(5)).values())
        check_eq(hs.ncalls(), 1, "half-open: one call goes to the failing model, not a call "
                 "for each request of the probe's batch")
        check_eq(sorted(r[0] for r in res), [424] + [503] * 4,
                 "the probe's request gets the model's error, the others ServiceUnavailable")


# 3c --------------------------------------------------------------------------
def test_budget_refused_batches():
    section("3c. batches the open breaker refuses do not fill the retry budget")
    with hostile_gateway("429", "retry budget, breaker", breaker_failures=1, breaker_open_ms=500,
                         retry_max=10, retry_budget_pct=100, retry_base_ms=1,
                         retry_max_ms=2) as (hs, gw):
        calls = 0
        post(gw, "m", "1,2\n")  # the burst of 10 retries: the budget is empty
        post(gw, "m", "1,2\n")
        calls += hs.ncalls()
        hs.reset("503")
        post(gw, "m", "1,2\n")  # the breaker opens
        refused = [post(gw, "m", "1,2\n")[0] for _ in range(20)]
        check_eq(set(refused), {503}, "the open breaker refuses batches at once")
        time.sleep(0.6)
        calls += hs.ncalls()
        hs.reset("echo")
        check_eq(post(gw, "m", "1,2\n")[0], 200, "the probe closes the breaker")
        calls += hs.ncalls()
        hs.reset("429")
        post(gw, "m", "1,2\n")
        calls += hs.ncalls()
        sent = 5  # batches sent: 2 throttled, 1 failed, the probe, 1 throttled
        check(calls - sent <= sent + 10,
              "retries <= retry_budget_pct%% of batches sent + a burst of 10, as docs/upstreams.md "
              "says: %d retries for %d batches sent (batches the breaker refused counted)"
              % (calls - sent, sent))


# 3d --------------------------------------------------------------------------
def test_breaker_open_message():
    section("3d. the open breaker's message, after a late success of an older call")
    with hostile_gateway("slowok", "breaker message", breaker_failures=2, breaker_open_ms=5000,
                         retry_max=0) as (hs, gw):
        res = {}
        t = threading.Thread(target=lambda: res.update(slow=post(gw, "m", "slow,1\n")))
        t.start()
        time.sleep(0.1)
        post(gw, "m", "1,2\n")
        post(gw, "m", "1,2\n")  # 2 failed calls in a row: the breaker opens
        t.join()
        check_eq(res["slow"][0], 200, "the older call is answered")
        st, _, body = post(gw, "m", "1,2\n")
        check_eq(st, 503, "the breaker is still open: ServiceUnavailable")
        check("open after 2 failed calls in a row" in body,
              "the message says how many calls failed in a row when it opened: " + body[:200])
        rz = readyz(gw)
        check("open after 2 failed calls in a row" in rz[1], "and so does /readyz: %s" % (rz,))


# 4 ---------------------------------------------------------------------------
def test_utf8_cut():
    section("4. a model's long non-ASCII error message")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url)})
    try:
        wait_ready(gw)
        hs.reset("utf8")
        st, hd, body = post(gw, "m", "1,2\n")
        check_eq(st, 424, "a model's 400: 424 ModelError")
        check_eq(hd.get("x-amzn-errortype"), "ModelError", "x-amzn-ErrorType ModelError")
        try:
            o = json.loads(body)
        except ValueError:
            o = {}
        check_eq(o.get("OriginalStatusCode"), 400, "OriginalStatusCode 400")
        om = o.get("OriginalMessage")
        check(isinstance(om, str) and om.startswith("x" + "\u00e9" * 100),
              "OriginalMessage holds the model's words (cut on a character boundary); "
              "body: %s" % body[:300])
        check(isinstance(o.get("Message"), str) and "Received client error (400)" in o["Message"],
              "Message says what SageMaker says; body: %s" % body[:300])
    finally:
        stop_clean(gw, "utf8")
        hs.close()


# 5, 6 ------------------------------------------------------------------------
def test_answers():
    section("5/6. answers: invalid JSON, CRLF, nested JSON")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url), "j": ep_conf(hs.url, content_type=JSON, accept=JSON)})
    try:
        wait_ready(gw)
        hs.reset("badjson")
        st, _, body = post(gw, "j", '{"instances": [[1, 2], [3, 4]]}', JSON, JSON)
        valid = True
        try:
            json.loads(body)
        except ValueError:
            valid = False
        check(st != 200 or valid,
              "an answer that is not JSON is not passed on as a 200 (got %d %s)" % (st, body[:120]))
        check_eq(st, 500, "it is InternalFailure naming the problem")

        hs.reset("badjsonl")
        st, _, body = post(gw, "m", "1,2\n3,4\n", CSV, JSONL)
        check_eq(st, 500, "a JSON Lines answer whose lines are not JSON is not passed on as a "
                 "200: InternalFailure (got %d %s)" % (st, body[:120]))
        check("not valid application/jsonlines" in body, "it says the answer is not valid "
              "JSON Lines: " + body[:200])

        hs.reset("bighdr")
        st, _, body = post(gw, "m", "1,2\n")
        check_eq((st, body), (500, json.dumps(
            {"message": "Row 1: The model's answer has more than 65536 bytes of headers."},
            separators=(",", ":"))), "an answer with 80 KiB of headers: 500 saying so")

        hs.reset("crlf")
        st, _, body = post(gw, "m", "1,2\n3,4\n5,6\n")
        check_eq((st, body), (200, "p1,2\np3,4\np5,6\n"), "CRLF answer, no final newline")

        hs.reset("nestedjson")
        st, _, body = post(gw, "j", '{"instances": [[1, 2], [3, 4]]}', JSON, JSON)
        want = {"predictions": [{"label": "a]b[\"}", "v": [[i], {"k": "]"}]} for i in range(2)]}
        try:
            got = json.loads(body)
        except ValueError:
            got = body
        check_eq((st, got), (200, want), "nested JSON predictions, exact")

        # Concurrent requests packed in one call: each gets its own row back.
        hs.reset("echo")
        res = together(lambda i: post(gw, "m", "%d,%d\n" % (i, i + 1000)), range(40))
        bad = [i for i in range(40) if res[i][:1] != (200,) or res[i][2] != "p%d,%d\n" % (i, i + 1000)]
        check_eq(bad, [], "40 concurrent requests, each its own prediction")
    finally:
        stop_clean(gw, "answers")
        hs.close()


# 7 ---------------------------------------------------------------------------
def test_resets():
    section("7. clients reset during backoff and bisection")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url, retry_max=5, retry_base_ms=200, retry_max_ms=400,
                               max_inflight=4)})
    try:
        wait_ready(gw)
        for mode, body in (("500", "1,2\n"), ("echo", "".join("666,%d\n" % i for i in range(32)))):
            hs.reset(mode)
            hs.delay = 0.05
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", gw.port))
                req = ("POST /endpoints/m/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "text/csv\r\nAccept: text/csv\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
                s.sendall(req.encode())
                time.sleep(0.03)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.close()
        hs.reset("echo")
        time.sleep(1.5)
        st, _, body = post(gw, "m", "1,2\n")
        check_eq((st, body), (200, "p1,2\n"), "served after the resets")
        check(gw.alive(), "alive after the resets")
    finally:
        stop_clean(gw, "resets")
        hs.close()


# 8 ---------------------------------------------------------------------------
def test_sagemaker_errors():
    section("8. SageMaker's own throttling, 503 and 530, retries exhausted")
    hs = Hostile()
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
                       "HOME": "/nonexistent-adversary-home"})
    try:
        gw = Gateway({"s": ep_conf("sagemaker://us-east-1/adv", endpoint_url=hs.url,
                                   retry_max=1)})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        wait_ready(gw)
        hs.reset("smthrottle")
        st, hd, body = post(gw, "s", "1,2\n")
        check(st != 424 and hd.get("x-amzn-errortype") != "ModelError",
              "SageMaker's ThrottlingException is not relayed as the model refusing the row "
              "(got %d %s %s)" % (st, hd.get("x-amzn-errortype"), body[:200]))
        check_eq(hd.get("x-amzn-errortype"), "ThrottlingException",
                 "it is a ThrottlingException (retry later)")
        hs.reset("sm503")
        st, hd, body = post(gw, "s", "1,2\n")
        check_eq((st, hd.get("x-amzn-errortype")), (503, "ServiceUnavailable"),
                 "SageMaker's own 503 is ServiceUnavailable, not a ModelError (body %s)" % body[:200])
        hs.reset("sm530")
        st, hd, body = post(gw, "s", "1,2\n")
        check_eq((st, hd.get("x-amzn-errortype"), json.loads(body).get("message")),
                 (530, "InternalDependencyException",
                  'Row 1: SageMaker answered 530 InternalDependencyException: {"message":"An '
                  'internal dependency failed."}'),
                 "SageMaker's InternalDependencyException keeps its name and status (the "
                 "client's SDK models it), after its retry")
        check_eq(hs.ncalls(), 2, "retried once (retry_max 1)")
        # the cap falls inside "OriginalStatusCode": part of the key before
        # it, the rest (10 bytes) after: still the model's 400
        hs.reset("smcut400")
        st, hd, body = post(gw, "s", "1,2\n")
        try:
            orig = json.loads(body).get("OriginalStatusCode")
        except ValueError:
            orig = None
        check_eq((st, hd.get("x-amzn-errortype"), orig), (424, "ModelError", 400),
                 "a ModelError cut inside its OriginalStatusCode key is still the model's 400 "
                 "(body %s)" % body[:200])
    finally:
        stop_clean(gw, "sagemaker errors")
        hs.close()


# 9 ---------------------------------------------------------------------------
def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) * 1024
    return 0


def test_answer_memory():
    section("9. answers held for calls in flight, against the memory budget")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=4, max_batch_rows=1, retry_max=0,
                               upstream_timeout_ms=20000)},
                 max_body_bytes=1048576, max_buffered_body_bytes=1048576)
    try:
        wait_ready(gw)
        hs.reset("stall")
        before = rss(gw.proc.pid)
        ts = [threading.Thread(target=lambda i=i: post(gw, "m", "%d,1\n" % i, timeout=60))
              for i in range(4)]
        for t in ts:
            t.start()
        peak = before
        end = time.time() + 4
        while time.time() < end:
            peak = max(peak, rss(gw.proc.pid))
            time.sleep(0.1)
        grown = peak - before
        print("   RSS grew by %.0f MiB with 4 calls in flight (server budget 1 MiB)"
              % (grown / 2**20), flush=True)
        check(grown < 64 << 20,
              "what calls in flight hold is charged to the budget (RSS grew by %d MiB for a 1 MiB "
              "budget)" % (grown >> 20))
        for t in ts:
            t.join()
    finally:
        stop_clean(gw, "answer memory")
        hs.close()


# 10 --------------------------------------------------------------------------
def test_no_creds_split_batch():
    section("10. no credentials (STS down), a batch cut into two calls")
    d = tempfile.mkdtemp(prefix="ig-adv-")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("eyJhbGciOiJSUzI1NiJ9.e30.sig")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens: the first fetch fails at once
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update({"AWS_WEB_IDENTITY_TOKEN_FILE": tok,
                       "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/adv",
                       "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:%d" % dead_port,
                       "HOME": d})
    try:
        # max_batch_bytes 20: two 10-byte rows fit one batch (20 bytes) but
        # not one call (a newline each: 22), so the job has two calls.
        gw = Gateway({"s": ep_conf("sagemaker://us-east-1/adv", endpoint_url="http://127.0.0.1:9",
                                   max_batch_bytes=20)})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        end = time.time() + 10
        while time.time() < end and "waiting" in readyz(gw)[1]:
            time.sleep(0.05)
        check("waiting" not in readyz(gw)[1], "the first fetch failed: " + readyz(gw)[1][:200])
        st, hd, body = post(gw, "s", "1234567890\n1234567891\n")
        check_eq((st, hd.get("x-amzn-errortype")), (500, "InternalFailure"),
                 "no credentials: InternalFailure (body %s)" % body[:200])
        check("no AWS credentials" in body, "it says there are no credentials: " + body[:200])
        check(gw.alive(), "the gateway is alive after a batch failed inside submit_batch")
    finally:
        stop_clean(gw, "no credentials, two calls")


# 11 --------------------------------------------------------------------------
def test_solo_flood():
    section("11. a flood of requests that each need a call of their own, then a plain one")
    with hostile_gateway("echo", "solo flood", max_inflight=2, max_delay_us=2000) as (hs, gw):
        hs.delay = 0.05  # 2 calls at a time: 20 calls a second
        res = {}

        def solo(i):
            if i % 2:
                res[i] = post(gw, "m", "%d,1\n" % i, timeout=30,
                              headers={"X-Amzn-SageMaker-Custom-Attributes": "a%d" % i})
            else:  # a quoted newline: the model reads two rows (500, its own)
                res[i] = post(gw, "m", '"%d\n",1\n' % i, timeout=30)

        ts = [threading.Thread(target=solo, args=(i,)) for i in range(60)]
        for t in ts:
            t.start()
        time.sleep(0.3)  # the flood is queued: about 3 s of calls
        t0 = time.time()
        good = post(gw, "m", "1,2\n")
        good_s = time.time() - t0
        for t in ts:
            t.join()
        print("   a plain request behind 60 solo requests: %.2f s" % good_s, flush=True)
        check_eq((good[0], good[2]), (200, "p1,2\n"), "the plain request answered")
        check(good_s < 0.6, "a plain request takes turns with the requests that each need a "
              "call of their own, not after all of them (%.2f s; a call takes 0.05 s)" % good_s)
        wrong = [i for i in range(1, 60, 2) if res[i][:1] != (200,) or res[i][2] != "p%d,1\n" % i]
        check_eq(wrong, [], "each request with headers of its own: its own prediction")
        check_eq(sorted(set(res[i][0] for i in range(0, 60, 2))), [500],
                 "each quoted-newline request: its own wrong count (500)")


# 12 --------------------------------------------------------------------------
def test_poison_500_breaker():
    section("12. a client whose rows make the model answer 500 does not open the breaker")
    with hostile_gateway("p500", "poison 500", breaker_failures=5, breaker_open_ms=5000,
                         retry_max=3) as (hs, gw):
        bad = [post(gw, "m", "666,%d\n" % i) for i in range(3)]
        check_eq([b[0] for b in bad], [424] * 3, "each poisoned request: 424 ModelError")
        st, _, body = post(gw, "m", "1,2\n")
        check_eq((st, body), (200, "p1,2\n"),
                 "3 requests of one client (12 calls answered 500) do not lock the endpoint's "
                 "other clients out (got %d %s)" % (st, body[:200]))
        rz = readyz(gw)
        check_eq(rz[0], 200, "/readyz: ready (%s)" % (rz,))
        # one client alone on the endpoint, request after request: more
        # than breaker_failures in a row, nothing else between them
        n0 = hs.ncalls()
        bad = [post(gw, "m", "666,%d\n" % i)[0] for i in range(12)]
        check_eq(bad, [424] * 12, "12 poisoned requests in a row: 424 each")
        st, _, body = post(gw, "m", "2,3\n")
        check_eq((st, body), (200, "p2,3\n"),
                 "12 requests in a row that make the model raise, more than breaker_failures "
                 "(5), with no other call between them: the others are not locked out "
                 "(got %d %s)" % (st, body[:200]))
        canaries = [b for b in hs.calls[n0:] if b == "1,2\n"]
        check_eq(len(canaries), 2,
                 "the canary, the row the model answered well, was sent each time the count "
                 "reached breaker_failures (the 5th and the 10th request)")
        check_eq(gw.metric('infergate_upstream_canaries_total{endpoint="m"}'), len(canaries),
                 "/metrics counts the canary calls")
        check_eq(gw.metric('infergate_upstream_breaker_opens_total{endpoint="m"}'), 0,
                 "the breaker never opened")
        hs.reset("503")  # the model is down (the retry budget is spent: a call a request)
        for _ in range(5):
            post(gw, "m", "1,2\n")
        deadline = time.time() + 5  # the 5th failure's canary fails too, after its answer
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.02)
        st, _, body = post(gw, "m", "1,2\n")
        check(st == 503 and "circuit breaker is open" in body,
              "a model answering 503 still opens the breaker (got %d %s)" % (st, body[:200]))


def test_dead_500_breaker():
    section("12c. a model that answers 500 to every call (it is down) opens the breaker")
    with hostile_gateway("500", "dead 500", breaker_failures=3, breaker_open_ms=300,
                         retry_max=1) as (hs, gw):
        res = [post(gw, "m", "%d,2\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "each request: 424 ModelError")
        n = hs.ncalls()
        st, _, body = post(gw, "m", "1,2\n")
        check(st == 503 and "circuit breaker is open" in body and hs.ncalls() == n,
              "three requests in a row (six calls) answered 500, none answered well: the "
              "breaker opens, the next request is not sent (got %d %s)" % (st, body[:200]))
        time.sleep(0.35)  # > breaker_open_ms: the next request is the probe
        st, _, body = post(gw, "m", "1,2\n")
        check_eq(st, 424, "the probe: the model's 500 (%s)" % body[:160])
        st, _, body = post(gw, "m", "1,2\n")
        check(st == 503 and "circuit breaker is open" in body,
              "a probe the model answers 500 does not close the breaker (got %d %s)"
              % (st, body[:200]))
    section("12d. a model that answered well, then raises on every call: the canary too")
    with hostile_gateway("echo", "good then dead 500", breaker_failures=3, breaker_open_ms=400,
                         retry_max=0) as (hs, gw):
        check_eq(post(gw, "m", "7,7\n")[:3:2], (200, "p7,7\n"), "answered well: the canary")
        hs.reset("500")
        res = [post(gw, "m", "%d,2\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "each request: 424 ModelError")
        deadline = time.time() + 5  # the canary goes after the request's answer
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.02)
        check_eq(hs.calls[-1], "7,7\n", "the third request sent the canary (calls: %r)"
                 % hs.calls)
        n = hs.ncalls()
        st, _, body = post(gw, "m", "1,2\n")
        check(st == 503 and "circuit breaker is open" in body and hs.ncalls() == n,
              "the canary raised too: the breaker is open (got %d %s)" % (st, body[:200]))
        # half-open: a request the model raises on takes the probe; the
        # canary goes for it, and the model, up again, closes the breaker
        hs.reset("p500")
        time.sleep(0.45)
        st, _, body = post(gw, "m", "666,1\n")
        check_eq(st, 424, "the probe: a request whose row makes the model raise (%s)"
                 % body[:160])
        deadline = time.time() + 5  # the canary goes after the request's answer
        while readyz(gw)[0] != 200 and time.time() < deadline:
            time.sleep(0.02)
        check_eq(hs.calls, ["666,1\n", "7,7\n"], "then the canary, for the probe")
        check_eq(post(gw, "m", "3,3\n")[:3:2], (200, "p3,3\n"),
                 "the canary answered well: the breaker closed")
        check_eq(readyz(gw)[0], 200, "/readyz: ready")


def test_poison_500_batched():
    section("12b. a request the model answers 500 batched with two good ones")
    with hostile_gateway("p500", "poison 500 batched", max_delay_us=200000, retry_max=1,
                         breaker_failures=100) as (hs, gw):
        res = post_together(gw, "m", {"bad": "666,1\n", "a": "1,1\n", "b": "2,2\n"})
        check_eq(res["bad"][0], 424, "the request whose row makes the model raise: 424 "
                 "ModelError (%s)" % res["bad"][2][:160])
        check_eq([(k, res[k][0], res[k][2]) for k in ("a", "b")],
                 [("a", 200, "p1,1\n"), ("b", 200, "p2,2\n")],
                 "the requests batched with it: their own predictions, not its 500")
        check(hs.ncalls() <= 2 + 2 * 3 - 1,
              "a call, its retry, then at most 2*3-1 calls to split 3 requests (got %d)"
              % hs.ncalls())


def test_suspect_connection():
    section("14. a connection whose rows the model refused: its next requests batched apart")
    for mode, bad in (("echo", 400), ("p500", 500)):
        with hostile_gateway(mode, "suspect connection " + mode, max_delay_us=300000,
                             retry_max=1, breaker_failures=100) as (hs, gw):
            # A comes from 127.0.0.2, the others from 127.0.0.1
            a = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30,
                                           source_address=("127.0.0.2", 0))

            def on_a(body, c=None):
                c = c or a
                c.request("POST", "/endpoints/m/invocations", body=body.encode(),
                          headers={"Content-Type": CSV, "Accept": CSV})
                r = c.getresponse()
                return r.status, r.read().decode()

            check_eq(on_a("666,0\n")[0], 424, "%d: the first bad row of connection A" % bad)
            n0 = hs.ncalls()
            res = together(lambda k: on_a("666,1\n") if k == "a" else
                           post(gw, "m", k + "\n")[::2], ["a", "1,1", "2,2"])
            check_eq([res["a"][0], res["1,1"], res["2,2"]],
                     [424, (200, "p1,1\n"), (200, "p2,2\n")],
                     "%d: A's second bad row fails alone, the two others get their "
                     "predictions" % bad)
            calls = sorted(hs.calls[n0:])
            want = [["1,1\n2,2\n", "666,1\n"], ["2,2\n1,1\n", "666,1\n"]]
            if bad == 500:  # the raised call is retried once
                want = [w[:1] + w[1:] * 2 for w in want]
            check(calls in want,
                  "%d: A's next request was not batched with the others' rows: none split "
                  "(calls %r)" % (bad, calls))
            # A new connection for each bad row: its address is a suspect too
            n0 = hs.ncalls()
            a2 = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30,
                                            source_address=("127.0.0.2", 0))
            res = together(lambda k: on_a("666,2\n", a2) if k == "a" else
                           post(gw, "m", k + "\n")[::2], ["a", "4,4", "5,5"])
            a2.close()
            check_eq([res["a"][0], res["4,4"], res["5,5"]],
                     [424, (200, "p4,4\n"), (200, "p5,5\n")],
                     "%d: a bad row on A's new connection fails alone" % bad)
            calls = sorted(hs.calls[n0:])
            want = [["4,4\n5,5\n", "666,2\n"], ["5,5\n4,4\n", "666,2\n"]]
            if bad == 500:
                want = [w[:1] + w[1:] * 2 for w in want]
            check(calls in want,
                  "%d: a new connection from A's address is batched apart too: none split "
                  "(calls %r)" % (bad, calls))
            check_eq(on_a("3,3\n"), (200, "p3,3\n"), "%d: A's good rows are answered" % bad)
            a.close()


def test_split_answers_early():
    section("14b. requests batched with a refused row: answered when their half is")
    with hostile_gateway("echo", "split answers early", max_delay_us=300000,
                         breaker_failures=100) as (hs, gw):
        hs.delay = 0.4  # each call: a split of 8 requests is 4 calls deep, 1.6 s
        t0 = time.time()

        def one(k):
            r = post(gw, "m", k + "\n")
            return r[0], r[2], time.time() - t0
        keys = ["666,9"] + ["%d,%d" % (i, i) for i in range(7)]
        res = together(one, keys)
        check_eq(res["666,9"][0], 424, "the refused row's request: 424")
        check_eq([res[k][:2] for k in keys[1:]], [(200, "p%s\n" % k) for k in keys[1:]],
                 "the 7 others: their own predictions")
        bad_t = res["666,9"][2]
        early = sorted(bad_t - res[k][2] for k in keys[1:])
        check(len([e for e in early if e >= 0.3]) >= 4,
              "the clean half (4 requests) answered calls before the refused row's (2 calls, "
              "0.8 s; whole split, ~0 s) "
              "(seconds before it: %s)" % ["%.2f" % e for e in early])
        check(hs.ncalls() <= 1 + 2 * 3, "at most 2*log2(8) calls more (%d)" % hs.ncalls())


def raw_request(port, ep, body, accept, timeout=30):
    """POST over HTTP/1.1 with a raw socket (http.client caps header lines
    at 64 KiB on the way back only; this sends any Accept)."""
    req = ("POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           "Accept: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
           % (ep, accept, len(body), body)).encode()
    head, _, rest = h1_exchange(port, req, timeout=timeout).partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode("utf-8", "replace")


def test_accept_quadratic():
    section("15. an Accept of many quoted strings before a comma: linear, not quadratic")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url)}, max_header_list_size=1048576)
    try:
        wait_ready(gw)
        # 500,000 quoted strings ("" each) in a parameter, then a comma
        acc = "text/csv;a=" + '""' * 250000 + ",text/csv"
        t0 = time.time()
        st, out = raw_request(gw.port, "m", "1,2\n", acc)
        took = time.time() - t0
        check_eq((st, out), (200, "p1,2\n"), "answered")
        t0 = time.time()
        st2, _, _ = post(gw, "m", "3,4\n")
        check_eq(st2, 200, "another request answered")
        check(took < 0.2, "a 1 MB Accept is parsed in well under 0.2 s (took %.2f s; the "
              "loop is blocked meanwhile)" % took)
    finally:
        stop_clean(gw, "accept quadratic")
        hs.close()


class BudgetModel(Hostile):
    """J1's rows ("slow") answered late; a call holding 666 and the long row
    refused at once; a call of 666 without it refused after 1 s."""

    def answer(self, h, body):
        lines = [l for l in body.split("\n") if l != ""]
        if any(l.startswith("slow") for l in lines):
            time.sleep(3)
            h.send(200, "".join("p\n" for l in lines))
        elif any(l.startswith("666") for l in lines):
            if not any(l.startswith("qqq") for l in lines):
                time.sleep(1.0)
            h.send(400, "row 666 is poison")
        else:
            h.send(200, "".join("p\n" for l in lines))


def test_seg_done_reentry_budget():
    section("14c. an early answer cancels the request's other batch; the same job's queued "
            "call fails as it starts (budget full): no use after free")
    hs = BudgetModel()
    gw = Gateway({"m": ep_conf(hs.url, max_batch_rows=4, max_delay_us=200000, max_inflight=2,
                               breaker_failures=100, upstream_timeout_ms=8000)},
                 max_buffered_body_bytes=1048576, max_body_bytes=900000,
                 max_conn_buffered_bytes=1048576)
    try:
        wait_ready(gw)
        hs.reset("custom")
        res = {}
        big = 200000

        def r():  # 4 rows in batch 1 (slow), 2 in batch 2 (one refused)
            res["r"] = post(gw, "m", "slow,1\nslow,2\nslow,3\nslow,4\n666,5\nr,6\n")

        def q():  # joins batch 2 after r's rows: the second half of its split
            res["q"] = post(gw, "m", "qqq" + "x" * big + "\n")

        def z():  # queued while both batches are out: holds the budget
            res["z"] = post(gw, "m", "zzz" + "y" * 540000 + "\n")

        ts = [threading.Thread(target=r)]
        ts[0].start()
        time.sleep(0.05)
        ts.append(threading.Thread(target=q))
        ts[1].start()
        time.sleep(0.5)
        ts.append(threading.Thread(target=z))
        ts[2].start()
        for t in ts:
            t.join(15)
        time.sleep(0.3)
        check(gw.alive(), "the gateway is alive; stderr: %s" % gw.stderr()[-3000:])
        check_eq(res.get("r", (None,))[0], 424, "r: its refused row's 424")
        check(res.get("q", (None,))[0] in (200, 400, 429, 503),
              "q: answered (%r)" % (res.get("q", (None, None, ""))[::2],))
    finally:
        stop_clean(gw, "seg_done re-entry")
        hs.close()


def test_container_headers():
    section("13. what a container is handed of a request's X-Amzn-SageMaker-* headers")
    with hostile_gateway("echo", "container headers") as (hs, gw):
        r = post(gw, "m", "1,1\n", headers={"X-Amzn-SageMaker-Custom-Attributes": "c=1; d",
                                             "X-Amzn-SageMaker-Inference-Id": "inf-13 x",
                                             "X-Amzn-SageMaker-Target-Variant": "AllTraffic"})
        check_eq((r[0], r[2]), (200, "p1,1\n"), "answered")
        with hs.lock:
            seen = list(hs.sm_hdrs)
        check_eq(seen, [{"x-amzn-sagemaker-custom-attributes": "c=1; d",
                         "x-amzn-sagemaker-inference-id": "inf-13 x"}],
                 "one call, with the custom attributes and the inference id as sent, and no "
                 "target variant (it routes)")
    with hostile_gateway("echo", "container target variant", max_delay_us=200000) as (hs, gw):
        tv = {"X-Amzn-SageMaker-Target-Variant": "AllTraffic"}
        res = together(lambda i: post(gw, "m", "%d,1\n" % i, headers=tv), range(4))
        check_eq([(res[i][0], res[i][2]) for i in range(4)],
                 [(200, "p%d,1\n" % i) for i in range(4)], "each its own prediction")
        check_eq(hs.ncalls(), 1, "requests naming the endpoint's own variant are batched "
                 "together: it is not handed to a container, so no call of their own")


def main():
    only = sys.argv[1:]
    tests = [test_slow_exec_params, test_exec_params_again, test_bisection_amplification, test_bisection_whole_requests,
             test_line_break_rows, test_line_break_stream, test_breaker_probe_too_large,
             test_half_open_one_call, test_budget_refused_batches, test_breaker_open_message,
             test_utf8_cut, test_answers, test_resets, test_sagemaker_errors, test_answer_memory,
             test_no_creds_split_batch, test_solo_flood,
             test_poison_500_breaker, test_dead_500_breaker, test_poison_500_batched,
             test_suspect_connection, test_split_answers_early,
             test_seg_done_reentry_budget, test_accept_quadratic, test_container_headers]
    for t in tests:
        if only and not any(o in t.__name__ for o in only):
            continue
        try:
            t()
        except Exception as e:  # a check that crashed is a failed check
            check(False, "%s raised %r" % (t.__name__, e))
    finish()


if __name__ == "__main__":
    main()
