"""An adversarial review of the `container` upstream over HTTP/2
(`upstream_http2 = on`, h2c by prior knowledge: upstream_remote.c,
curl_loop.c) in front of hostile or broken model containers: raw HTTP/2
servers on loopback whose frames each check sets (hpack for the header
blocks, frames built by hand), HTTP/1.1 for the probes (/ping,
/execution-parameters), as the gateway sends them.

1. (fixed) a container that closes its idle h2c connection (GOAWAY
   NO_ERROR then FIN: an idle timeout, a restart): the next calls must
   still go by HTTP/2 prior knowledge on a new connection. Before the fix,
   on a libcurl older than 8 (the h2c gate), the gateway counted the dead
   socket as "a connection to share", sent the call with
   CURL_HTTP_VERSION_2_0, and libcurl opened an HTTP/1.1 connection with
   Upgrade: h2c; that connection stayed in the pool, so every later call
   went HTTP/1.1 for good (a container that speaks only HTTP/2 failed
   them all);
1b. (fixed) the same through SETTINGS_MAX_CONCURRENT_STREAMS 1: the calls
   the one stream cannot take went HTTP/1.1 too (now: another h2c
   connection);
1c. (fixed) a container that stops serving its h2c connection (it takes
   the streams and never answers them) while it would serve a new one:
   each timed-out stream is reset and its connection kept, so every call,
   and every probe of the half-open breaker, went to that connection for
   good. The probe now goes on a new connection (the pool emptied when no
   call is out);
1d. (fixed) an answer whose header block is over 16 KiB (within the
   64 KiB REMOTE_HDR_MAX), sent with its DATA: libcurl < 8 read it
   through its 16 KiB receive buffer and the call stalled until its
   timeout (424); now answered. One over 64 KiB: 500 InternalFailure
   saying so, at once;
2. (held) answers cut on the h2 stream: RST_STREAM after part of a 200's
   body, END_STREAM before the content-length, a PUSH_PROMISE, an answer
   on a stream never opened: never a 200 with part of an answer;
3. (held) a container that never answers on its h2 stream: the call times
   out (upstream_timeout_ms), and a healthy endpoint of the same gateway
   is answered meanwhile;
4. (held) /execution-parameters: MaxConcurrentTransforms 1 caps the
   streams in flight at 1; zero, negative, fractional or absurd values
   are ignored (calls still go).

Exits 0 on success; prints each failed check. Run against bin/infergate
(or INFERGATE_BIN); needs python3's hpack (with h2, as iglib)."""
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import (Gateway, LoopbackServer, check, check_eq, finish, h2_frame,  # noqa: E402
                   h2_split, read_head)
import hpack  # noqa: E402

DATA, HEADERS, RST, SETTINGS, PUSH, PING, GOAWAY, WUPD = 0, 1, 3, 4, 5, 6, 7, 8
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}


class H2Container(LoopbackServer):
    """A model container: HTTP/1.1 for the probes, raw HTTP/2 by prior
    knowledge for POST /invocations, answered by self.answer (a function of
    (server, send, enc, sid, n_rows, stream_index)). An HTTP/1.1 POST
    /invocations is counted (h1_calls) and answered 505, as a container
    that speaks only HTTP/2 would."""

    def __init__(self, answer, settings=(), exec_body=None):
        self.answer = answer
        self.settings = list(settings)
        self.exec_body = exec_body
        self.calls = 0          # h2 streams asked
        self.h2_conns = 0
        self.h1_calls = 0
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        super().__init__()

    def _serve(self, s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            buf = b""
            while len(buf) < 4:
                b = s.recv(4096)
                if not b:
                    return
                buf += b
            if buf.startswith(b"PRI "):
                with self.lock:
                    self.h2_conns += 1
                self.h2(s, buf)
            else:
                self.h1(s, buf)
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass

    def h1(self, s, buf):
        while True:
            buf = read_head(s, buf)
            if b"\r\n\r\n" not in buf:
                return
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1]
            if path.endswith(b"/ping"):
                code, body = 200, b""
            elif path.endswith(b"/execution-parameters") and self.exec_body is not None:
                code, body = 200, self.exec_body
            elif path.endswith(b"/invocations"):
                with self.lock:
                    self.h1_calls += 1
                code, body = 505, b"HTTP/2 only"
            else:
                code, body = 404, b"no"
            s.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (code, len(body)) + body)
            if code == 505:
                return

    def h2(self, s, buf):
        enc, dec = hpack.Encoder(), hpack.Decoder()
        wlock = threading.Lock()

        def send(data):
            with wlock:
                s.sendall(data)
        sets = b"".join(struct.pack(">HI", k, v) for k, v in self.settings)
        send(h2_frame(SETTINGS, 0, 0, sets))
        while len(buf) < 24:
            b = s.recv(65536)
            if not b:
                return
            buf += b
        buf, bodies = buf[24:], {}
        while True:
            frames, buf = h2_split(buf)
            for t, fl, sid, p in frames:
                if t == SETTINGS and not fl & 1:
                    send(h2_frame(SETTINGS, 1, 0))
                elif t == PING and not fl & 1:
                    send(h2_frame(PING, 1, 0, p))
                elif t == HEADERS:
                    hb = p[1:len(p) - p[0]] if fl & 0x8 else p
                    dec.decode(hb[5:] if fl & 0x20 else hb)
                    bodies[sid] = b""
                elif t == DATA and sid in bodies:
                    bodies[sid] += p
                    if p and not fl & 1:
                        send(h2_frame(WUPD, 0, 0, struct.pack(">I", len(p))) +
                             h2_frame(WUPD, 0, sid, struct.pack(">I", len(p))))
                    elif p:
                        send(h2_frame(WUPD, 0, 0, struct.pack(">I", len(p))))
                if t in (HEADERS, DATA) and fl & 1 and sid in bodies:
                    n = len([x for x in bodies.pop(sid).split(b"\n") if x])
                    with self.lock:
                        self.calls += 1
                        k = self.calls
                    self.answer(self, send, enc, sid, n, k)
            b = s.recv(65536)
            if not b:
                return
            buf += b


def head(enc, status=200, extra=()):
    return enc.encode([(":status", str(status)), ("content-type", "text/csv")] + list(extra))


def preds(n):
    return b"".join(b"%d\n" % i for i in range(n))


def a_good(srv, send, enc, sid, n, k):
    send(h2_frame(HEADERS, 4, sid, head(enc)) + h2_frame(DATA, 1, sid, preds(n)))


def a_idle_close(srv, send, enc, sid, n, k):
    """Answers, then closes the connection once idle (GOAWAY naming the
    last stream, then FIN), as an idle timeout or a restart does."""
    a_good(srv, send, enc, sid, n, k)
    if k == 1:
        def later():
            time.sleep(0.3)
            try:
                send(h2_frame(GOAWAY, 0, 0, struct.pack(">II", sid, 0)))
                srv.conns[-1].shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        threading.Thread(target=later, daemon=True).start()


def a_slow(srv, send, enc, sid, n, k):
    with srv.lock:
        srv.inflight += 1
        srv.max_inflight = max(srv.max_inflight, srv.inflight)

    def later():
        time.sleep(0.3)
        with srv.lock:
            srv.inflight -= 1
        try:
            a_good(srv, send, enc, sid, n, k)
        except OSError:
            pass
    threading.Thread(target=later, daemon=True).start()


def a_rst_partial(srv, send, enc, sid, n, k):
    send(h2_frame(HEADERS, 4, sid, head(enc)) + h2_frame(DATA, 0, sid, preds(n)[:2]) +
         h2_frame(RST, 0, sid, struct.pack(">I", 2)))


def a_early_end(srv, send, enc, sid, n, k):
    body = preds(n)
    send(h2_frame(HEADERS, 4, sid, head(enc, extra=[("content-length", str(len(body) + 8))])) +
         h2_frame(DATA, 1, sid, body))


def a_push(srv, send, enc, sid, n, k):
    pp = struct.pack(">I", sid + 1) + enc.encode([(":method", "GET"), (":scheme", "http"),
                                                   (":authority", "x"), (":path", "/p")])
    send(h2_frame(PUSH, 4, sid, pp))
    a_good(srv, send, enc, sid, n, k)


def a_wrong_stream(srv, send, enc, sid, n, k):
    send(h2_frame(HEADERS, 4, sid + 2, head(enc)) + h2_frame(DATA, 1, sid + 2, preds(n)))


def a_big_head(size_k):
    """A 200 whose header block is <size_k> KiB (HEADERS and CONTINUATION
    frames of 16 KiB), its DATA in the same write."""
    def a(srv, send, enc, sid, n, k):
        h = head(enc, extra=[("x-b%d" % i, "v" * 1000) for i in range(size_k)])
        chunks = [h[i:i + 16384] for i in range(0, len(h), 16384)]
        fr = h2_frame(HEADERS, 0, sid, chunks[0])
        for i, c in enumerate(chunks[1:]):
            fr += h2_frame(9, 4 if i == len(chunks) - 2 else 0, sid, c)  # CONTINUATION
        send(fr + h2_frame(DATA, 1, sid, preds(n)))
    return a


def a_hang(srv, send, enc, sid, n, k):
    pass


def a_wedged_first(srv, send, enc, sid, n, k):
    """The first h2c connection takes streams and never answers them;
    the later ones are served."""
    with srv.lock:
        if not hasattr(srv, "wedged"):
            srv.wedged = send
    if send is not srv.wedged:
        a_good(srv, send, enc, sid, n, k)


def post(gw, ep, body, timeout=30):
    req = urllib.request.Request(gw.invoke_url(ep), data=body, headers=CSV)
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - t


def post_many(gw, ep, bodies):
    out = [None] * len(bodies)

    def one(i):
        out[i] = post(gw, ep, bodies[i])
    ths = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return out


def wait_ready(gw, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(gw.url + "/readyz", timeout=2) as r:
                if json.loads(r.read()).get("status") == "ready":
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def main():
    t0 = time.monotonic()
    srv = {
        "idle": H2Container(a_idle_close),
        "mcs1": H2Container(a_slow, settings=[(3, 1)]),  # SETTINGS_MAX_CONCURRENT_STREAMS 1
        "rst": H2Container(a_rst_partial),
        "early": H2Container(a_early_end),
        "push": H2Container(a_push),
        "wrong": H2Container(a_wrong_stream),
        "hang": H2Container(a_hang),
        "head20": H2Container(a_big_head(20)),
        "head70": H2Container(a_big_head(70)),
        "wedged": H2Container(a_wedged_first),
        "good": H2Container(a_good),
        "exec1": H2Container(a_slow, exec_body=b'{"MaxConcurrentTransforms": 1, "MaxPayloadInMB": 6}'),
        "exec0": H2Container(a_good, exec_body=b'{"MaxConcurrentTransforms": 0, "MaxPayloadInMB": 0}'),
        "execx": H2Container(a_good, exec_body=b'{"MaxConcurrentTransforms": -5, "MaxPayloadInMB": '
                                               b'1e9, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    }
    eps = {}
    for name, s in srv.items():
        eps[name] = {"model": "http://" + s.hostport, "upstream_http2": "on", "max_delay_us": "0",
                     "retry_max": "0", "upstream_timeout_ms": "1000", "breaker_failures": "100"}
    eps["wedged"].update(upstream_timeout_ms="500", breaker_failures="2", breaker_open_ms="300")
    with Gateway(eps) as gw:
        check(wait_ready(gw), "every container is ready (GET /ping answered)")

        # 1. the idle h2c connection closed by the container
        st, body, _ = post(gw, "idle", b"1,2\n3,4\n")
        check_eq((st, body), (200, b"0\n1\n"), "idle: the first call, by h2c")
        time.sleep(0.8)  # the container closed its idle connection
        for i in range(3):
            st, body, _ = post(gw, "idle", b"1,2\n3,4\n5,6\n")
            check_eq((st, body), (200, b"0\n1\n2\n"),
                     "idle: call %d after the container closed its idle h2c connection" % (i + 2))
        check_eq(srv["idle"].h1_calls, 0, "idle: no call went HTTP/1.1 (Upgrade: h2c) after the "
                 "h2c connection closed")
        check_eq(srv["idle"].h2_conns, 2, "idle: a new h2c connection, by prior knowledge")

        # 1b. one stream at a time
        res = post_many(gw, "mcs1", [b"1,2\n"] * 4)
        check_eq([(st, b) for st, b, _ in res], [(200, b"0\n")] * 4,
                 "mcs1: SETTINGS_MAX_CONCURRENT_STREAMS 1, 4 calls at once: all answered")
        check_eq(srv["mcs1"].h1_calls, 0, "mcs1: no call went HTTP/1.1 (Upgrade: h2c)")

        # 1c. the h2c connection the container stopped serving
        res = [post(gw, "wedged", b"1,2\n") for _ in range(2)]
        check_eq([st for st, _, _ in res], [424, 424], "wedged: two calls time out on the stalled "
                 "h2c connection (the breaker opens)")
        time.sleep(0.5)  # breaker_open_ms: the next call is the probe
        res = [post(gw, "wedged", b"1,2\n") for _ in range(3)]
        check_eq([(st, b) for st, b, _ in res], [(200, b"0\n")] * 3,
                 "wedged: the probe and the calls after it go on a new h2c connection")
        check_eq(srv["wedged"].h2_conns, 2, "wedged: one new h2c connection")

        # 1d. large header blocks
        st, body, dt = post(gw, "head20", b"1,2\n3,4\n")
        check(st == 200 and body == b"0\n1\n" and dt < 0.9,
              "head20: a 20 KiB header block with its DATA: answered, not stalled to the timeout: "
              "%d %r in %.2f s" % (st, body[:100], dt))
        st, body, dt = post(gw, "head70", b"1,2\n3,4\n")
        check(st == 500 and b"more than 65536 bytes of headers" in body and dt < 0.9,
              "head70: a 70 KiB header block: 500 saying so, at once: %d %r in %.2f s"
              % (st, body[:100], dt))

        # 2. answers cut on the stream: never a 200 with part of an answer
        for ep in ("rst", "early", "push", "wrong"):
            st, body, dt = post(gw, ep, b"1,2\n3,4\n")
            check(st in (503, 424) and dt < 3.0,
                  "%s: a broken answer is the client's 503 (or 424 timeout), never a 200: got %d %r "
                  "in %.1f s" % (ep, st, body[:120], dt))

        # 3. a container that never answers; a healthy endpoint meanwhile
        out = {}
        th = threading.Thread(target=lambda: out.update(hang=post(gw, "hang", b"1,2\n")))
        th.start()
        time.sleep(0.2)
        st, body, dt = post(gw, "good", b"1,2\n")
        check(st == 200 and body == b"0\n" and dt < 0.75,
              "good: answered before another endpoint's hanging call times out: %d %r in %.2f s"
              % (st, body, dt))
        th.join()
        st, body, dt = out["hang"]
        check(st == 424 and b"timed out" in body and 0.9 < dt < 2.5,
              "hang: 424 timeout after upstream_timeout_ms (1 s): %d %r in %.2f s"
              % (st, body[:80], dt))

        # 4. execution parameters
        res = post_many(gw, "exec1", [b"1,2\n"] * 3)
        check_eq([(st, b) for st, b, _ in res], [(200, b"0\n")] * 3, "exec1: all answered")
        check_eq(srv["exec1"].max_inflight, 1, "exec1: MaxConcurrentTransforms 1: one call at once")
        for ep in ("exec0", "execx"):
            res = post_many(gw, ep, [b"1,2\n"] * 3)
            check_eq([(st, b) for st, b, _ in res], [(200, b"0\n")] * 3,
                     "%s: absurd execution parameters ignored: all answered" % ep)
        check(gw.alive(), "the gateway is alive")
    log = gw.stderr()
    check("AddressSanitizer" not in log and "runtime error" not in log,
          "no sanitizer report: " + log[-1500:])
    print("runtime %.1f s" % (time.monotonic() - t0))
    finish()


if __name__ == "__main__":
    main()
