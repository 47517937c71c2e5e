"""HTTP/2 conformance at the frame level, side by side with nghttpd.

h2spec is not in Debian; this sends the frames of the h2spec cases most
often failed (connection preface, SETTINGS and PING acks, frame size,
flow-control overflow, HPACK errors, closed and idle streams, stream-level
errors) with raw sockets, over h2c and over TLS (ALPN h2), to infergate and
to nghttpd (Debian's nghttp2-server), and checks that infergate's outcome
for each case is the same as nghttpd's: the same GOAWAY or RST_STREAM with
the same error code, the same ack, the connection closed or left open.
After a GOAWAY both must close the connection within CLOSE_WITHIN seconds
(h2spec waits 2 s by default; TLS: close_notify, then FIN).
"""

import os
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import hpack

from iglib import DEMO_MODEL, Gateway, check, check_eq, finish, free_port, run

TIMEOUT = 2.0  # h2spec's default
CLOSE_WITHIN = 1.0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINUP, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
          4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
          8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
          12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings(*pairs, flags=0):
    return frame(SETTINGS, flags, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


class Conn:
    def __init__(self, port, tls):
        self.enc = hpack.Encoder()
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw)
        self.s = raw
        self.buf = b""

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            pass

    def hello(self):
        """Preface + empty SETTINGS; read the server's SETTINGS and ack them."""
        self.send(PREFACE + settings())
        got = self.until(lambda f: f[0] == SETTINGS and not f[1] & ACK)
        if got:
            self.send(settings(flags=ACK))
        return got

    def headers(self, sid, hdrs, flags=END_HEADERS | END_STREAM):
        return frame(HEADERS, flags, sid, self.enc.encode(hdrs))

    def read_frame(self, deadline):
        """-> (type, flags, sid, payload), 'eof', or 'timeout'."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.time()
            if left <= 0:
                return "timeout"
            self.s.settimeout(left)
            try:
                b = self.s.recv(65536)
            except (socket.timeout, TimeoutError):
                return "timeout"
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return "eof"
            if not b:
                return "eof"
            self.buf += b
        n = 9 + int.from_bytes(self.buf[:3], "big")
        f, self.buf = self.buf[:n], self.buf[n:]
        return f[3], f[4], int.from_bytes(f[5:9], "big") & 0x7FFFFFFF, f[9:]

    def until(self, want, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while True:
            f = self.read_frame(deadline)
            if isinstance(f, str):
                return None
            if want(f):
                return f

    def verdict(self, sid=None, expect_ack=None):
        """Read until the first telling event:
        GOAWAY(code) [+ how long the close took], RST_STREAM(code) on <sid>,
        a PING/SETTINGS ack (<expect_ack>), a response on <sid>, EOF, timeout."""
        deadline = time.time() + TIMEOUT
        while True:
            f = self.read_frame(deadline)
            if f == "eof":
                return "closed", None
            if f == "timeout":
                return "timeout", None
            t, fl, s, p = f
            if t == GOAWAY:
                code = ERRORS.get(struct.unpack(">I", p[4:8])[0], "?")
                t0 = time.time()
                rest = self.until(lambda f: False, timeout=TIMEOUT)
                closed = time.time() - t0
                return "GOAWAY " + code, closed if rest is None else None
            if t == RST and (sid is None or s == sid):
                return "RST_STREAM " + ERRORS.get(struct.unpack(">I", p[:4])[0], "?"), None
            if expect_ack is not None and t == expect_ack and fl & ACK:
                return ("PING ack " + p.hex()) if t == PING else "SETTINGS ack", None
            if t == HEADERS and sid is not None and s == sid:
                return "response", None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def req(path="/ping", method="GET", extra=()):
    return [(":method", method), (":scheme", "https"), (":path", path),
            (":authority", "127.0.0.1")] + list(extra)


INVOKE = "/endpoints/demo/invocations"


def case_invalid_preface(c):
    c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
    v, _ = c.verdict()
    return "closed" if v.startswith(("closed", "GOAWAY")) else v, None


def case_settings_ack(c):
    c.hello()
    c.send(settings((3, 100)))
    return c.verdict(expect_ack=SETTINGS)


def case_ping_ack(c):
    c.hello()
    c.send(frame(PING, 0, 0, b"h2spec!!"))
    return c.verdict(expect_ack=PING)


def case_ping_stream(c):
    c.hello()
    c.send(frame(PING, 0, 1, b"h2spec!!"))
    return c.verdict()


def case_ping_size(c):
    c.hello()
    c.send(frame(PING, 0, 0, b"short"))
    return c.verdict()


def case_settings_ack_payload(c):
    c.hello()
    c.send(frame(SETTINGS, ACK, 0, struct.pack(">HI", 3, 1)))
    return c.verdict()


def case_settings_bad_length(c):
    c.hello()
    c.send(frame(SETTINGS, 0, 0, b"\x00\x03\x00"))
    return c.verdict()


def case_settings_stream(c):
    c.hello()
    c.send(frame(SETTINGS, 0, 1, b""))
    return c.verdict()


def case_settings_window_too_big(c):
    c.hello()
    c.send(settings((4, 2 ** 31)))
    return c.verdict()


def case_settings_push_invalid(c):
    c.hello()
    c.send(settings((2, 2)))
    return c.verdict()


def case_settings_frame_size_invalid(c):
    c.hello()
    c.send(settings((5, 16383)))
    return c.verdict()


def case_window_update_conn_overflow(c):
    c.hello()
    c.send(frame(WINUP, 0, 0, struct.pack(">I", 2 ** 31 - 1)))
    return c.verdict()


def case_window_update_stream_overflow(c):
    c.hello()
    c.send(c.headers(1, req("/ping"), flags=END_HEADERS))  # request still open
    c.send(frame(WINUP, 0, 1, struct.pack(">I", 2 ** 31 - 1)))
    return c.verdict(sid=1)


def case_window_update_zero(c):
    c.hello()
    c.send(frame(WINUP, 0, 0, struct.pack(">I", 0)))
    return c.verdict()


def case_window_update_size(c):
    c.hello()
    c.send(frame(WINUP, 0, 0, b"\x00\x00\x01"))
    return c.verdict()


def case_data_stream0(c):
    c.hello()
    c.send(frame(DATA, 0, 0, b"x"))
    return c.verdict()


def case_data_idle(c):
    c.hello()
    c.send(frame(DATA, END_STREAM, 1, b"x"))
    return c.verdict()


def case_frame_too_big(c):
    c.hello()
    c.send(c.headers(1, req(INVOKE, "POST", [("content-type", "text/csv")]), flags=END_HEADERS))
    c.send(frame(DATA, 0, 1, b"1" * 16385))
    return c.verdict()


def case_hpack_invalid_index(c):
    c.hello()
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\x0f"))
    return c.verdict()


def case_hpack_table_size_update_late(c):
    c.hello()
    block = c.enc.encode(req("/ping")) + b"\x20"  # dynamic table size update after a field
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
    return c.verdict()


def case_even_stream(c):
    c.hello()
    c.send(c.headers(2, req("/ping")))
    return c.verdict()


def case_headers_closed_stream(c):
    c.hello()
    c.send(c.headers(1, req("/ping")))
    c.until(lambda f: f[0] in (HEADERS, DATA) and f[1] & END_STREAM and f[2] == 1)
    time.sleep(0.05)
    c.send(c.headers(1, req("/ping")))
    return c.verdict()


def case_data_closed_stream(c):
    c.hello()
    c.send(c.headers(1, req("/ping")))
    c.until(lambda f: f[0] in (HEADERS, DATA) and f[1] & END_STREAM and f[2] == 1)
    time.sleep(0.05)
    c.send(frame(DATA, 0, 1, b"x"))
    return c.verdict()


def case_lower_stream_id(c):
    c.hello()
    c.send(c.headers(5, req("/ping")))
    c.send(c.headers(3, req("/ping")))
    return c.verdict(sid=3)


def case_continuation_alone(c):
    c.hello()
    c.send(frame(CONT, END_HEADERS, 1, c.enc.encode(req("/ping"))))
    return c.verdict()


def case_continuation_other_stream(c):
    c.hello()
    block = c.enc.encode(req("/ping"))
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(CONT, END_HEADERS, 3, block[5:]))
    return c.verdict()


def case_rst_idle(c):
    c.hello()
    c.send(frame(RST, 0, 1, struct.pack(">I", 8)))
    return c.verdict()


def case_rst_size(c):
    c.hello()
    c.send(c.headers(1, req("/ping"), flags=END_HEADERS))
    c.send(frame(RST, 0, 1, b"\x00\x00\x00\x08\x00"))
    return c.verdict()


def case_priority_self(c):
    c.hello()
    c.send(frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 15)))
    return c.verdict(sid=1)


def case_unknown_frame(c):
    c.hello()
    c.send(frame(0x42, 0, 0, b"whatever") + frame(PING, 0, 0, b"after-uk"))
    return c.verdict(expect_ack=PING)


def case_uppercase_header(c):
    c.hello()
    c.send(c.headers(1, req("/ping", extra=[("X-Upper", "v")])))
    return c.verdict(sid=1)


def case_missing_path(c):
    c.hello()
    c.send(c.headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "x")]))
    return c.verdict(sid=1)


def case_connection_header(c):
    c.hello()
    c.send(c.headers(1, req("/ping", extra=[("connection", "keep-alive")])))
    return c.verdict(sid=1)


def case_te_not_trailers(c):
    c.hello()
    c.send(c.headers(1, req("/ping", extra=[("te", "gzip")])))
    return c.verdict(sid=1)


def case_content_length_mismatch(c):
    c.hello()
    c.send(c.headers(1, req(INVOKE, "POST", [("content-type", "text/csv"),
                                             ("content-length", "10")]), flags=END_HEADERS))
    c.send(frame(DATA, END_STREAM, 1, b"1,2"))
    return c.verdict(sid=1)


def case_data_half_closed_remote(c):
    c.hello()
    c.send(c.headers(1, req("/ping")) + frame(DATA, 0, 1, b"x"))
    return c.verdict(sid=1)


def case_pseudo_after_regular(c):
    c.hello()
    c.send(c.headers(1, [(":method", "GET"), (":scheme", "https"), ("x-a", "b"),
                         (":path", "/ping"), (":authority", "x")]))
    return c.verdict(sid=1)


def case_pseudo_duplicate(c):
    c.hello()
    c.send(c.headers(1, req("/ping") + [(":path", "/ping")]))
    return c.verdict(sid=1)


def case_trailer_pseudo(c):
    c.hello()
    c.send(c.headers(1, req(INVOKE, "POST", [("content-type", "text/csv")]), flags=END_HEADERS))
    c.send(frame(DATA, 0, 1, b"1,2"))
    c.send(c.headers(1, [(":status", "200")]))
    return c.verdict(sid=1)


def case_padding_too_long(c):
    c.hello()
    block = c.enc.encode(req("/ping"))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM | PADDED, 1,
                 bytes([len(block) + 10]) + block))
    return c.verdict()


def case_get_ping(c):
    c.hello()
    c.send(c.headers(1, req("/ping")))
    return c.verdict(sid=1)


def case_post_invoke(c):
    c.hello()
    c.send(c.headers(1, req(INVOKE, "POST", [("content-type", "text/csv"),
                                             ("content-length", "3")]), flags=END_HEADERS))
    c.send(frame(DATA, END_STREAM, 1, b"1,2"))
    return c.verdict(sid=1)


def case_client_goaway(c):
    c.hello()
    c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
    t0 = time.time()
    v, _ = c.verdict()
    return v, time.time() - t0 if v == "closed" else None


CASES = [(name[5:], fn) for name, fn in sorted(globals().items()) if name.startswith("case_")]


def run_cases(port, tls):
    out = {}
    for name, fn in CASES:
        try:
            c = Conn(port, tls)
        except OSError as e:
            out[name] = ("connect: %s" % e, None)
            continue
        try:
            out[name] = fn(c)
        finally:
            c.close()
    return out


tmp = tempfile.mkdtemp(prefix="ig-h2frames-")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=127.0.0.1"])
check_eq(r.returncode, 0, "self-signed certificate")
docroot = os.path.join(tmp, "htdocs")
os.makedirs(docroot)
with open(os.path.join(docroot, "ping"), "w") as f:
    f.write("")


def nghttpd(tls):
    port = free_port()
    cmd = ["nghttpd", "-d", docroot, str(port)] + ([key, cert] if tls else ["--no-tls"])
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, port


for tls in (False, True):
    label = "TLS" if tls else "h2c"
    ref, rport = nghttpd(tls)
    want = run_cases(rport, tls)
    ref.terminate()
    ref.wait()
    opts = {"tls_cert": cert, "tls_key": key} if tls else {}
    gw = Gateway({"demo": {"model": DEMO_MODEL}}, ping_scheme="https" if tls else "http", **opts)
    with gw:
        got = run_cases(gw.port, tls)
    for name, _ in CASES:
        g, w = got[name], want[name]
        gv, wv = g[0], w[0]
        if os.environ.get("VERBOSE"):
            print("  %s %-32s infergate %-28s %-6s nghttpd %-28s %s" % (
                label, name, gv, "" if g[1] is None else "%.3fs" % g[1], wv,
                "" if w[1] is None else "%.3fs" % w[1]))
        if name in ("get_ping", "post_invoke"):
            # nghttpd serves files: only that a response comes is compared
            check_eq(gv, "response", "%s %s: a response (nghttpd: %s)" % (label, name, wv))
            continue
        if name == "invalid_preface" and not tls:
            # cleartext without the preface is HTTP/1.1 to infergate: it answers
            # 400 and closes, nghttpd closes; both end the connection
            pass
        check_eq(gv, wv, "%s %s: same outcome as nghttpd" % (label, name))
        if gv.startswith("GOAWAY") or name == "client_goaway":
            check(g[1] is not None and g[1] < CLOSE_WITHIN,
                  "%s %s: connection closed %s s after GOAWAY (nghttpd %s s)"
                  % (label, name, None if g[1] is None else round(g[1], 3),
                     None if w[1] is None else round(w[1], 3)))
    print("%s: %d cases, outcomes %s" % (label, len(CASES),
                                         sorted(set(v[0] for v in got.values()))), flush=True)
finish()
