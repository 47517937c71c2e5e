"""Resource budgets no client can defeat (issue 13 points 1, 2, 3, 5), against the
real gateway: every attack runs while an honest client's requests keep getting
their exact predictions, and afterwards /metrics shows nothing held.

  declared  HTTP/2 connections send HEADERS with content-length: 6291456 and no
            DATA, then one DATA byte per 0.4 s on every stream. A declared length
            reserves nothing (it used to reserve 6 MiB each, and three such
            streams locked every other client out of the 16 MiB budget); the
            trickle moves 2.5 bytes/s, below min_rate_bytes per idle_timeout_ms,
            so every stream is cut within about one period.
  hpack     header blocks that HPACK sends once and then references (15 copies
            of a 4000-byte header per stream, 128 streams): decoded bytes are
            charged to the connection's share as the block is built; the
            streams past the share get 400 ThrottlingException naming the
            connection's limit, the share is never passed.
  window    a client that opens its flow-control window one byte per 0.4 s on a
            large response: the response is counted while held and cut within
            about one period; its bytes are released.
  h1        an HTTP/1.1 body trickling one byte per 0.4 s: 408 within a period
            and a half, then close.
  unread    HTTP/2 connections with a 4 KiB receive buffer open 128 GET /metrics
            streams each and never read: the frames copied into the socket's
            buffer (up to 1 MiB a connection) are charged (they used to be held
            uncharged once their stream closed); then more such connections
            than the server budget holds: it is never passed, the gateway's
            memory grows by no more than it, and every reader is cut by the
            stall rule and its bytes released.
  pipeline  HTTP/1.1 connections pipeline GET /metrics without reading: the
            output up to the watermark and the requests read behind it (up to
            256 KiB a connection, uncharged before) are both charged; twice as
            many hold no more than the server budget; the idle timeout closes
            them and releases it all.

HTTP/2 is spoken with hand-made frames (hpack from python3-h2)."""

import json
import os
import re
import select
import socket
import struct
import threading
import time

import hpack

from iglib import (BIN, DEMO_MODEL, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   expected_body, finish, H2_PREFACE, h2_frame, h2_split, load_model, run)

PERIOD_S = 1.0            # idle_timeout_ms: the stall period
CAP = 16 << 20            # max_buffered_body_bytes
SHARE = 6291456 + 65536 + 32768  # max_conn_buffered_bytes: the least allowed
TRICKLE_S = 0.4
DEMO = load_model(DEMO_MODEL)
ROWS = digits_rows()

# ---- HTTP/2 frames -----------------------------------------------------------

PREFACE, frame = H2_PREFACE, h2_frame
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
NO_ERROR, CANCEL = 0, 8
S_WINDOW = 4


class Stream:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.data = bytearray()
        self.ended = False
        self.rst = None
        self.t_end = None

    def done(self):
        return self.ended or self.rst is not None


class H2:
    """A minimal HTTP/2 client on a blocking socket; reads only when asked."""

    def __init__(self, port, window=1 << 24):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 20
        self.inbuf = b""
        self.streams = {}
        self.goaway = None
        self.eof = False
        self.t_eof = None
        self.next_id = 1
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", S_WINDOW, window)) +
                          frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))

    def request(self, path, body=None, extra=(), end=True, send=True):
        """Open a stream; with send False, return its frames instead (a fresh
        connection's encoder makes the same bytes: they can be sent on another)."""
        sid = self.next_id
        self.next_id += 2
        hdrs = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
                (":path", path), ("content-type", "text/csv")] + list(extra)
        out = frame(HEADERS, END_HEADERS | (END_STREAM if body is None and end else 0), sid,
                    self.enc.encode(hdrs))
        if body is not None:
            body = body.encode()
            for i in range(0, len(body), 16384):
                last = i + 16384 >= len(body)
                out += frame(DATA, END_STREAM if end and last else 0, sid, body[i:i + 16384])
        self.streams[sid] = Stream()
        if not send:
            return out
        self.sock.sendall(out)
        return sid

    def send(self, b):
        try:
            self.sock.sendall(b)
            return True
        except OSError:
            return False

    def pump(self, timeout):
        """Read what arrives within <timeout>; False once the connection ended."""
        if self.eof:
            return False
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return True
            chunk = self.sock.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            self.t_eof = time.time()
            return False
        frames, self.inbuf = h2_split(self.inbuf + chunk)
        for f in frames:
            self.on_frame(*f)
        return True

    def run_until(self, cond, timeout=10):
        deadline = time.time() + timeout
        while not cond() and time.time() < deadline:
            if not self.pump(min(0.05, max(0.0, deadline - time.time()))):
                break
        return cond()

    def on_frame(self, t, fl, sid, p):
        st = self.streams.get(sid)
        if t == HEADERS and st is not None:
            for k, v in self.dec.decode(p):
                if k == ":status":
                    st.status = int(v)
                else:
                    st.headers[k] = v
            if fl & END_STREAM:
                st.ended, st.t_end = True, time.time()
        elif t == DATA and st is not None:
            st.data += p
            if fl & END_STREAM:
                st.ended, st.t_end = True, time.time()
        elif t == RST_STREAM and st is not None:
            st.rst, st.t_end = struct.unpack(">I", p[:4])[0], time.time()
        elif t == SETTINGS and not fl & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        elif t == PING and not fl & ACK:
            self.send(frame(PING, ACK, 0, p))
        elif t == GOAWAY:
            last, err = struct.unpack(">II", p[:8])
            self.goaway = (last & 0x7fffffff, err)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def inv(endpoint="demo"):
    return "/endpoints/%s/invocations" % endpoint


def metrics(gw):
    text = run(["curl", "-sS", "-m", "5", gw.url + "/metrics"]).stdout.decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(infergate_[a-z_]+) ([0-9.e+]+)$", text, re.M)}


def wait_metric(gw, name, pred, timeout=5):
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        v = metrics(gw).get(name)
        if v is not None and pred(v):
            break
        time.sleep(0.05)
    return v


class Honest(threading.Thread):
    """An honest client: requests over HTTP/1.1 and h2c alternately until told to
    stop; records each (status, exact body?) outcome."""

    def __init__(self, gw):
        super().__init__()
        self.gw = gw
        self.stop = threading.Event()
        self.results = []

    def run(self):
        i = 0
        while not self.stop.is_set() or len(self.results) < 4:
            rows = ROWS[(i * 7) % 1500:(i * 7) % 1500 + 20]
            st, hd, out = curl(self.gw.invoke_url("demo"), csv_body(rows), ("Content-Type: text/csv",),
                               http2=i % 2 == 1)
            self.results.append((st, hd.get("x-amzn-errortype"), out == expected_body(DEMO, rows)))
            i += 1


def honest_ok(h, what):
    bad = [r for r in h.results if r != (200, None, True)]
    check(len(h.results) >= 4 and not bad,
          "%s: the honest client got %d exact answers (%d not: %r)"
          % (what, len(h.results) - len(bad), len(bad), bad[:3]))


# A request in progress holds one 4 KiB unit: /metrics sees itself.
ASKING = 4096


def settle(gw, what):
    """Everything the attack held is released: the budget holds only the
    request asking /metrics."""
    v = wait_metric(gw, "infergate_buffered_bytes", lambda v: v == ASKING)
    check_eq(v, ASKING, "%s: infergate_buffered_bytes back to the asking request's unit" % what)
    v = wait_metric(gw, "infergate_buffered_body_bytes", lambda v: v == 0)
    check_eq(v, 0, "%s: infergate_buffered_body_bytes back to 0" % what)


# ---- the attacks ----------------------------------------------------------------

def case_declared(gw):
    nconn, per = 4, 8
    honest = Honest(gw)
    conns = [H2(gw.port) for _ in range(nconn)]
    t0 = time.time()
    for c in conns:
        for _ in range(per):
            c.request(inv(), extra=[("content-length", "6291456")], end=False)
    for c in conns:
        c.run_until(lambda: False, 0.05)
    m = metrics(gw)
    check(m.get("infergate_buffered_body_bytes") == 0,
          "declared: 32 x 6 MiB declared, no body byte: no body storage (%r)"
          % m.get("infergate_buffered_body_bytes"))
    check(m.get("infergate_buffered_bytes", 1 << 40) <= nconn * per * 4096 + ASKING,
          "declared: the budget holds at most one 4 KiB unit per stream (%r)"
          % m.get("infergate_buffered_bytes"))
    honest.start()
    # one DATA byte per 0.4 s on every stream still open, for 3 periods at most
    while time.time() - t0 < 3 * PERIOD_S:
        for c in conns:
            for sid, st in c.streams.items():
                if not st.done() and not c.eof and c.goaway is None:
                    c.send(frame(DATA, 0, sid, b"1"))
        end = time.time() + TRICKLE_S
        while time.time() < end:
            for c in conns:
                c.pump(0.01)
        if all(c.eof or all(st.done() for st in c.streams.values()) for c in conns):
            break
    honest.stop.set()
    honest.join()
    took = []
    for c in conns:
        c.run_until(lambda: c.eof, 3)
        ends = [st.t_end for st in c.streams.values() if st.t_end] + ([c.t_eof] if c.t_eof else [])
        took.append(max(ends) - t0 if ends else None)
        check(c.eof or all(st.rst == CANCEL for st in c.streams.values()),
              "declared: every trickling stream is cut (GOAWAY %r, eof %r)" % (c.goaway, c.eof))
        check(all(st.status is None for st in c.streams.values()),
              "declared: no trickling stream is answered")
        c.close()
    check(all(t is not None and t <= 2 * PERIOD_S + 0.5 for t in took),
          "declared: cut within 2.5 periods of the headers (%s)" % took)
    honest_ok(honest, "declared")
    m = metrics(gw)
    check(m.get("infergate_stalled_total", 0) >= nconn * per,
          "declared: infergate_stalled_total counts the %d streams (%r)"
          % (nconn * per, m.get("infergate_stalled_total")))
    check_eq(m.get("infergate_buffered_refused_total"), 0.0,
             "declared: the server-wide budget never refused")
    settle(gw, "declared")
    print("  declared: %d streams cut after %s s; honest client: %d answers"
          % (nconn * per, ["%.2f" % t for t in took], len(honest.results)), flush=True)


def case_hpack(gw):
    nconn, per, copies = 2, 128, 15
    big = "b" * 4000
    honest = Honest(gw)
    first = H2(gw.port)
    # encoded once, up front: a slow client is cut by the stall rule before
    # it has sent enough to reach the share
    burst = b"".join(first.request(inv(), extra=[("content-length", "10")] +
                                   [("x-bomb", big)] * copies, end=False, send=False)
                     for _ in range(per))
    conns = []
    for n in range(nconn):
        # each connection opened just before its burst: one opened with the
        # first and left silent while the first's burst is taken (seconds
        # under ASan) is cut as idle before it sends anything
        c = first if n == 0 else H2(gw.port)
        c.run_until(lambda: False, 0.1)  # the server's SETTINGS first
        c.streams = {sid: Stream() for sid in range(1, 2 * per, 2)}
        c.sock.sendall(burst)
        conns.append(c)
    print("  hpack: %d bytes on the wire per connection for %d streams of %d header bytes each"
          % (len(burst), per, copies * (len(big) + 6)), flush=True)
    honest.start()
    peak_conn = peak_all = 0
    t0 = time.time()
    while time.time() - t0 < 0.6:
        for c in conns:
            c.pump(0.01)
        m = metrics(gw)
        peak_conn = max(peak_conn, m.get("infergate_conn_buffered_bytes_max", 0))
        peak_all = max(peak_all, m.get("infergate_buffered_bytes", 0))
    want = json.dumps({"message": "This connection is holding its limit of %d bytes for its "
                       "requests; retry later or on another connection." % SHARE},
                      separators=(",", ":"))
    for n, c in enumerate(conns):
        c.run_until(lambda: c.eof, 3 * PERIOD_S)
        refused = [st for st in c.streams.values() if st.status == 400]
        waiting = [st for st in c.streams.values() if st.status is None]
        check(len(refused) >= 1 and len(waiting) >= 1 and len(refused) + len(waiting) == per,
              "hpack %d: streams past the share are refused, the others wait (%d refused, %d "
              "waiting; GOAWAY %r; eof %.2f s after the burst)"
              % (n, len(refused), len(waiting), c.goaway, (c.t_eof or t0) - t0))
        check(all(st.headers.get("x-amzn-errortype") == "ThrottlingException" and
                  bytes(st.data).decode() == want for st in refused),
              "hpack %d: every refusal is ThrottlingException naming the connection's limit" % n)
        check(c.eof and c.goaway is not None and c.goaway[1] == NO_ERROR,
              "hpack %d: the waiting streams are cut by the stall rule (GOAWAY %r)"
              % (n, c.goaway))
        c.close()
    honest.stop.set()
    honest.join()
    honest_ok(honest, "hpack")
    check(0 < peak_conn <= SHARE, "hpack: one connection never held more than its share "
          "(%d of %d)" % (peak_conn, SHARE))
    check(peak_all <= nconn * SHARE + (1 << 20), "hpack: the server held %d bytes for %d "
          "attackers" % (peak_all, nconn))
    m = metrics(gw)
    check(m.get("infergate_conn_buffered_refused_total", 0) >= 1,
          "hpack: infergate_conn_buffered_refused_total counts the refusals")
    settle(gw, "hpack")
    print("  hpack: %d streams x %d x 4000-byte header; a connection held at most %d bytes "
          "(share %d); all held at most %d" % (nconn * per, copies, peak_conn, SHARE, peak_all),
          flush=True)


def case_window(gw):
    rows = ROWS[:2000]
    want = expected_body(DEMO, rows)
    honest = Honest(gw)
    c = H2(gw.port, window=1)
    sid = c.request(inv(), csv_body(rows))
    c.run_until(lambda: c.streams[sid].status is not None, 10)
    t0 = time.time()
    check_eq((c.streams[sid].status, bytes(c.streams[sid].data)), (200, want[:1].encode()),
             "window: the headers and one byte of the response come")
    held = wait_metric(gw, "infergate_buffered_bytes", lambda v: v >= len(want))
    check(held is not None and held >= len(want),
          "window: the held-back response (%d bytes) is counted (%r)" % (len(want), held))
    honest.start()
    while not c.eof and not c.streams[sid].done() and time.time() - t0 < 4 * PERIOD_S:
        c.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", 1)))
        c.run_until(lambda: c.eof, TRICKLE_S)
    took = (c.t_eof or c.streams[sid].t_end or time.time()) - t0
    honest.stop.set()
    honest.join()
    got = len(c.streams[sid].data)
    check(c.eof or c.streams[sid].rst == CANCEL,
          "window: cut (GOAWAY %r, RST %r)" % (c.goaway, c.streams[sid].rst))
    check(PERIOD_S - 0.1 <= took <= 2 * PERIOD_S + 0.5,
          "window: cut %.2f s after the answer (want 0.9..2.5)" % took)
    check(got < 16, "window: only %d bytes of %d went" % (got, len(want)))
    honest_ok(honest, "window")
    c.close()
    settle(gw, "window")
    print("  window: %d of %d response bytes, cut after %.2f s" % (got, len(want), took),
          flush=True)


def case_h1(gw):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: t\r\n"
              b"Content-Type: text/csv\r\nContent-Length: 100\r\n\r\n1")
    t0 = time.time()
    got = b""
    while time.time() - t0 < 4 * PERIOD_S and b"\r\n\r\n" not in got:
        r, _, _ = select.select([s], [], [], TRICKLE_S)
        if r:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        else:
            try:
                s.send(b"1")
            except OSError:
                break
    took = time.time() - t0
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    s.close()
    body = json.dumps({"message": "The request body came slower than 4096 bytes per %d ms."
                       % int(PERIOD_S * 1000)}, separators=(",", ":"))
    head, _, rest = got.decode("utf-8", "replace").partition("\r\n\r\n")
    check_eq((head.split("\r\n")[0], rest), ("HTTP/1.1 408 Request Timeout", body),
             "h1: the trickling body gets 408")
    check("\r\nConnection: close" in head, "h1: ... with Connection: close")
    check(PERIOD_S - 0.1 <= took <= 1.5 * PERIOD_S + 0.2,
          "h1: 408 %.2f s after the headers (want 0.9..1.7)" % took)
    settle(gw, "h1")


def rss_kib(gw):
    with open("/proc/%d/status" % gw.proc.pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


class NonReader(H2):
    """An HTTP/2 client with a 4 KiB receive buffer that opens <n> GET <path>
    streams and then reads nothing (the kernel holds the server back)."""

    def __init__(self, port, path, n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        self.sock = s
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.inbuf, self.streams, self.goaway, self.eof, self.t_eof = b"", {}, None, False, None
        out = PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", S_WINDOW, 1 << 24)) + \
            frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30))
        for i in range(n):
            sid = 1 + 2 * i
            out += frame(HEADERS, END_HEADERS | END_STREAM, sid,
                         self.enc.encode([(":method", "GET"), (":scheme", "http"),
                                          (":authority", "127.0.0.1"), (":path", path)]))
            self.streams[sid] = Stream()
        s.sendall(out)

    def gone(self):
        """True once the gateway closed its side, seen without reading (reading would
        let the server go on): its socket for us is no longer ESTABLISHED."""
        me = self.sock.getsockname()[1]
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if int(p[2].split(":")[1], 16) == me and p[3] == "01":
                    return False
        return True


def kernel_queues(port):
    """Bytes the kernel holds on loopback connections to <port>: the server
    sockets' send queues plus the clients' receive queues (/proc/net/tcp)."""
    total = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            lport, rport = int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16)
            tx, rx = (int(x, 16) for x in p[4].split(":"))
            if lport == port:
                total += tx
            elif rport == port:
                total += rx
    return total


def case_unread(_gw):
    """h2 clients that never read (issue 13 point 5 follow-up), on a gateway with
    64 endpoints (a /metrics of about 280 KB): the frames copied into the
    socket's buffer (up to 1 MiB a connection) are charged while they are there
    (they used to be held uncharged once their stream closed); the server budget
    caps the whole; the stall rule cuts them all and releases their bytes."""
    eps = {"e%d" % i: {"model": DEMO_MODEL} for i in range(63)}
    eps["demo"] = {"model": DEMO_MODEL}
    with Gateway(eps, idle_timeout_ms=str(int(PERIOD_S * 1000)), max_buffered_body_bytes=str(CAP),
                 max_conn_buffered_bytes=str(SHARE)) as gw:
        size = len(run(["curl", "-sS", gw.url + "/metrics"]).stdout)
        nconn, per = 2, 20  # 5.7 MB of answers each: within the share, past the kernel's 4 MiB
        base = rss_kib(gw)
        honest = Honest(gw)
        conns = [NonReader(gw.port, "/metrics", per) for _ in range(nconn)]
        honest.start()
        time.sleep(0.5)
        m = metrics(gw)
        held = m.get("infergate_buffered_bytes", 0) - ASKING
        kern = kernel_queues(gw.port)
        # 20 answers of /metrics take all but 0.6 MB of a share: what the kernel
        # does not take waits in the gateway, and the frames copied for the
        # socket (up to 1 MiB) are charged with the answers still held, until
        # the share refuses more. Before, they were not: about 5.8 MB held.
        check(held >= nconn * (SHARE - (64 << 10)) and
              m.get("infergate_conn_buffered_bytes_max", 0) <= SHARE,
              "unread: %d connections that read nothing hold their whole share each, output "
              "waiting for the socket included (%d held of %d; %d bytes in the kernel)"
              % (nconn, held, nconn * SHARE, kern))
        honest.stop.set()
        honest.join()
        honest_ok(honest, "unread")
        # many more: the server budget is reached and never passed; /metrics
        # itself is throttled while it is full
        more = [NonReader(gw.port, "/metrics", per) for _ in range(8)]
        peak_held = peak_rss = throttled = 0
        left = conns + more
        deadline = time.time() + 3 * PERIOD_S + 2.5
        while left and time.time() < deadline:
            out = run(["curl", "-sS", "-m", "5", "-i", gw.url + "/metrics"]).stdout
            if out.startswith(b"HTTP/1.1 200"):
                v = re.search(rb"^infergate_buffered_bytes ([0-9]+)$", out, re.M)
                peak_held = max(peak_held, int(v.group(1)) if v else 0)
            elif out.startswith(b"HTTP/1.1 400") and b"ThrottlingException" in out:
                throttled += 1
            peak_rss = max(peak_rss, rss_kib(gw) - base)
            left = [c for c in left if not c.gone()]
            time.sleep(0.05)
        check(peak_held <= CAP and (throttled > 0 or peak_held > CAP - SHARE),
              "unread: 10 non-readers: the server held at most %d bytes, its budget %d "
              "(/metrics throttled %d times while it was full)" % (peak_held, CAP, throttled))
        check(not left, "unread: every non-reader is cut by the stall rule (%d left)" % len(left))
        for c in conns + more:
            c.close()
        m = metrics(gw)
        check(m.get("infergate_stalled_total", 0) >= 1,
              "unread: counted in infergate_stalled_total (%r)" % m.get("infergate_stalled_total"))
        settle(gw, "unread")
        print("  unread: %d non-readers held %d bytes (%d in the kernel, /metrics %d bytes); 10 "
              "held at most %d bytes (/metrics throttled %d times); the gateway grew by at most "
              "%d KiB" % (nconn, held, kern, size, peak_held, throttled, peak_rss), flush=True)


def case_pipeline(gw):
    """HTTP/1.1 clients pipelining without reading: output up to the watermark and
    the input read behind it are both charged to the connection."""
    nconn = 8
    req = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
    honest = Honest(gw)
    socks = []
    for _ in range(nconn):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", gw.port))
        s.setblocking(False)
        socks.append(s)
    honest.start()
    burst = req * 4096
    sent = [0] * nconn
    quiet = time.time()
    while time.time() - quiet < 0.5:
        for i, s in enumerate(socks):
            try:
                k = s.send(burst)
                if k > 0:
                    sent[i] += k
                    quiet = time.time()
            except (BlockingIOError, OSError):
                pass
        time.sleep(0.01)
    m = metrics(gw)
    honest.stop.set()
    honest.join()
    honest_ok(honest, "pipeline")
    per = m.get("infergate_conn_buffered_bytes_max", 0)
    # the answers stop at HTTP_OUT_WATERMARK (1 MiB); the requests read behind
    # them up to HTTP_READ_HIGH (256 KiB) are charged too
    check(per >= (1 << 20) + (192 << 10),
          "pipeline: a connection is charged for its unread answers and the requests read "
          "behind them (%d bytes; %d bytes of requests sent)" % (per, max(sent)))
    check(m.get("infergate_buffered_bytes", 0) <= CAP, "pipeline: within the server budget")
    # as many again: more than the server budget holds; it is never passed
    # (/metrics is throttled itself while it is full)
    for _ in range(nconn):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", gw.port))
        s.setblocking(False)
        socks.append(s)
    peak = throttled = 0
    t0 = time.time()
    while time.time() - t0 < 0.6:
        for s in socks[nconn:]:
            try:
                s.send(burst)
            except OSError:
                pass
        out = run(["curl", "-sS", "-m", "5", "-i", gw.url + "/metrics"]).stdout
        v = re.search(rb"^infergate_buffered_bytes ([0-9]+)$", out, re.M)
        if out.startswith(b"HTTP/1.1 200") and v:
            peak = max(peak, int(v.group(1)))
        elif out.startswith(b"HTTP/1.1 400") and b"ThrottlingException" in out:
            throttled += 1
    check(peak <= CAP and (throttled > 0 or peak > CAP - (2 << 20)),
          "pipeline: %d connections: the server held at most %d bytes, its budget %d "
          "(/metrics throttled %d times while it was full)" % (2 * nconn, peak, CAP, throttled))
    # nothing read: the idle timeout closes them (reading would let them go on)
    settle(gw, "pipeline")
    for s in socks:
        s.close()
    print("  pipeline: %d connections held up to %d bytes each; %d held at most %d bytes "
          "(/metrics throttled %d times)" % (nconn, per, 2 * nconn, peak, throttled), flush=True)


def case_config():
    """A share smaller than one maximum request is refused at start-up (exit 2, naming
    the option); the default share follows a max_body_bytes raised past it."""
    conf = ["--listen", "127.0.0.1:0", "--check-config"]
    r = run([BIN] + conf + ["--max-conn-buffered-bytes", "1048576"])
    err = r.stderr.decode()
    check_eq(r.returncode, 2, "config: a share below one maximum request: exit 2")
    check("command line: --max-conn-buffered-bytes: max_conn_buffered_bytes (1048576) is below "
          "max_body_bytes + max_header_list_size + 32768 bytes of bookkeeping (6389760)" in err,
          "config: ... naming the option and the least share: %r" % err[-300:])
    r = run([BIN] + conf + ["--max-body-bytes", "67108864"])
    check_eq(r.returncode, 0, "config: the default share follows max_body_bytes (%r)"
             % r.stderr.decode()[-300:])


CASES = [globals()["case_" + n] for n in
         os.environ.get("BUDGET_CASES", "declared hpack window h1 unread pipeline").split()]
case_config()
with Gateway({"demo": {"model": DEMO_MODEL}}, idle_timeout_ms=str(int(PERIOD_S * 1000)),
             max_buffered_body_bytes=str(CAP), max_conn_buffered_bytes=str(SHARE)) as gw:
    m = metrics(gw)
    check_eq((m.get("infergate_buffered_bytes_limit"), m.get("infergate_conn_buffered_bytes_limit"),
              m.get("infergate_buffered_bytes")), (float(CAP), float(SHARE), float(ASKING)),
             "/metrics shows both budgets, nothing held but the asking request")
    for case in CASES:
        t = time.time()
        try:
            case(gw)
        except Exception as e:  # noqa: BLE001 - a crash of the test is a failed check
            import traceback
            traceback.print_exc()
            check(False, "%s raised %r" % (case.__name__, e))
        print("  %s: %.1fs" % (case.__name__, time.time() - t), flush=True)
    check(gw.alive(), "the gateway is alive after every attack")

finish()
