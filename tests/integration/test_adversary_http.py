"""An adversary's cheap attacks on the HTTP layer, against the real gateway.

  idle      max_connections taken by connections that send nothing (or only an
            HTTP/2 preface and SETTINGS) and then sit for idle_timeout_ms: a
            connect costs nothing, and 8 of them used to lock every new client
            out for a whole idle period. At the limit the longest-idle
            connection (no request started, nothing to write) now makes room:
            the new client gets its answer, the evicted HTTP/2 client its
            GOAWAY(NO_ERROR). Connections with a request in progress are
            never evicted (the new one is then refused, as before).
  slow      max_connections held by header blocks that trickle for
            header_timeout_ms (slowloris) or first bytes that never make a
            protocol: past 1 s in that stage, the oldest makes room; younger
            ones are left alone (the newcomer is refused).
  reader    an HTTP/2 client opens 40 GET /metrics streams and reads its socket
            at 8 KiB/s: above min_rate_bytes per idle_timeout_ms for the socket,
            far below it for 40 streams. The socket's progress used to count
            whole for every stream waiting behind it, so one slow reader held
            40 answers (11 MB) for as little as 68 bytes/s; each stream now
            needs its own min_rate of the socket's progress, and the connection
            is cut within a few periods, its bytes released.
  hold      a body sent fast to most of its length, then trickled at 4 x
            min_rate_bytes: it used to keep its bytes as long as it liked (a
            6 MiB body for 68 bytes/s); a period must now also move 1/16 of
            what the request holds (h1: 408; h2: cut; bytes released).
  rapid     HEADERS + RST_STREAM 5000 times (CVE-2023-44487): the gateway
            ends the connection (nghttp2's reset rate limit), stays up, and
            holds nothing afterwards.
  madeyoureset  whole requests followed by a frame that would make the
            gateway reset their streams (WINDOW_UPDATE 0, PRIORITY on itself;
            CVE-2025-8671): connection errors in nghttp2 1.52, the first ends
            the connection.
  cont      a header block of many empty CONTINUATION frames (CVE-2024-28182):
            the connection ends at once.
  lengths   Content-Length, chunk sizes and h2 content-length near 2^64: the
            right refusal, never a wrapped length.
  chunkext  an HTTP/1.1 chunk-size line with a chunk extension trickled one
            byte at a time (the parser keeps none of it): bytes that are not
            body do not count as progress; 408 within a period or two."""

import os
import re
import signal
import socket
import struct
import threading
import time

import hpack

from iglib import (DEMO_MODEL, H2_PREFACE, Gateway, check, check_eq, finish, h1_exchange, h2_frame,
                   h2_split, run)

PERIOD_S = 1.0
PREFACE, frame = H2_PREFACE, h2_frame
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4


def metrics(gw):
    text = run(["curl", "-sS", "-m", "5", gw.url + "/metrics"]).stdout.decode()
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(infergate_[a-z_]+) ([0-9.e+]+)$", text, re.M)}


def ping_status(gw, timeout=3):
    out = run(["curl", "-sS", "-m", str(timeout), "-o", "/dev/null", "-w", "%{http_code}",
               gw.url + "/ping"]).stdout.decode()
    return int(out) if out.isdigit() else 0


def read_frames(sock, timeout):
    """Frames the server sent within <timeout> (until EOF); (frames, eof)."""
    buf, frames, eof = b"", [], False
    deadline = time.time() + timeout
    sock.settimeout(0.1)
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            eof = True
            break
        buf += chunk
    frames += h2_split(buf)[0]
    return frames, eof


def h2_open(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 24)) +
              frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
    return s


def gone(sock):
    """True once the gateway closed its side (seen without reading)."""
    me = sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if int(p[2].split(":")[1], 16) == me and p[3] == "01":
                return False
    return True


def case_idle():
    with Gateway({"demo": {"model": DEMO_MODEL}}, max_connections="8",
                 idle_timeout_ms="30000") as gw:
        time.sleep(0.3)  # the start-up /ping's connection is gone
        h2s = [h2_open(gw.port) for _ in range(2)]
        time.sleep(0.1)
        idle = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(6)]
        time.sleep(0.2)
        t = time.time()
        st = ping_status(gw)
        check_eq(st, 200, "idle: 8 connections that sent nothing hold max_connections 8: a new "
                 "client still gets its answer (the longest idle makes room)")
        check(time.time() - t < 2, "idle: ... at once (%.2fs)" % (time.time() - t))
        frames, eof = read_frames(h2s[0], 1.0)
        goaways = [struct.unpack(">II", p[:8]) for t_, _, _, p in frames if t_ == GOAWAY]
        check(eof and goaways and goaways[-1] == (0, 0),
              "idle: the evicted HTTP/2 client (the longest idle) gets GOAWAY(last stream 0, "
              "NO_ERROR) and its end (%r, eof %s)" % (goaways, eof))
        for s in h2s + idle:
            s.close()
        time.sleep(0.3)
        # connections with a request in progress are not evicted
        busy = []
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: text/csv\r\nContent-Length: 6\r\n\r\n1,2,")
            busy.append(s)
        time.sleep(0.3)
        check_eq(ping_status(gw, 2), 0, "idle: 8 connections each with a request body on its "
                 "way: a new client is refused (none is evicted)")
        s = busy[0]
        s.sendall(b"3\n")
        s.settimeout(5)
        try:
            head = s.recv(65536)
        except OSError:
            head = b""
        check(head.startswith(b"HTTP/1.1 "), "idle: ... and a busy connection still gets its "
              "answer (%r)" % head[:40])
        for s in busy:
            s.close()
        time.sleep(0.3)
        check_eq(ping_status(gw), 200, "idle: the gateway answers once they are gone")


def case_slow():
    """max_connections held by header blocks trickled for header_timeout_ms
    (slowloris) or first bytes that never make a protocol: at the limit the
    one longest in that stage, past 1 s, makes room."""
    with Gateway({"demo": {"model": DEMO_MODEL}}, max_connections="4",
                 header_timeout_ms="30000") as gw:
        time.sleep(0.3)
        socks = []
        for i in range(4):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"PRI * HTTP/2.0\r\n" if i == 3 else
                      b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\nX-A: ")
            socks.append(s)
        time.sleep(0.2)
        check_eq(ping_status(gw, 2), 0, "slow: 4 header blocks begun 0.2 s ago hold "
                 "max_connections 4: a new client is refused (none is that old)")
        time.sleep(1.2)
        check_eq(ping_status(gw), 200, "slow: past 1 s, the oldest of them makes room for a "
                 "new client (it used to wait for header_timeout_ms)")
        socks[0].settimeout(2)
        try:
            first = socks[0].recv(100)
        except OSError:
            first = b"?"
        check_eq(first, b"", "slow: the oldest header block's connection is ended (EOF)")
        for s in socks:
            s.close()
        time.sleep(0.3)
        # refused bodies (413) being read and dropped: each used to hold its
        # slot for idle_timeout_ms for the price of one request
        socks = []
        for i in range(4):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: text/csv\r\nContent-Length: 7340032\r\n\r\n1,2\n")
            socks.append(s)
        time.sleep(1.3)
        check_eq(ping_status(gw), 200, "slow: 4 refused bodies being dropped for over 1 s: the "
                 "oldest makes room for a new client")
        socks[0].settimeout(2)
        got = b""
        try:
            while True:
                b = socks[0].recv(65536)
                if not b:
                    break
                got += b
        except OSError:
            got += b"?"
        check(got.startswith(b"HTTP/1.1 413 ") and got.endswith(b"}"),
              "slow: ... its 413 was sent, then its end (%r)" % got[-40:])
        for s in socks:
            s.close()


def case_reader():
    """min_rate_bytes 256 KiB per 1 s period; 40 answers of /metrics wait behind
    a socket read at about 1.2 MiB/s: plenty for one stream, a tenth of what 40
    need. The socket's progress used to count whole for each of them."""
    eps = {"e%d" % i: {"model": DEMO_MODEL} for i in range(63)}
    eps["demo"] = {"model": DEMO_MODEL}
    with Gateway(eps, idle_timeout_ms=str(int(PERIOD_S * 1000)),
                 min_rate_bytes=str(256 << 10)) as gw:
        size = len(run(["curl", "-sS", gw.url + "/metrics"]).stdout)
        s = h2_open(gw.port, rcvbuf=65536)
        enc = hpack.Encoder()
        out = b""
        for i in range(40):
            out += frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i,
                         enc.encode([(":method", "GET"), (":scheme", "http"),
                                     (":authority", "127.0.0.1"), (":path", "/metrics")]))
        s.sendall(out)
        stop = threading.Event()
        got = [0]

        def reader():
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not b:
                    break
                got[0] += len(b)
                time.sleep(0.05)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        t0 = time.time()
        time.sleep(0.3)
        held0 = metrics(gw).get("infergate_buffered_bytes", 0)
        while time.time() - t0 < 4 * PERIOD_S and not gone(s):
            time.sleep(0.05)
        cut, t_cut = gone(s), time.time() - t0
        stop.set()
        th.join()
        print("  reader: cut %s after %.1fs, read %d of %d" % (cut, t_cut, got[0], 40 * size))
        s.close()
        deadline = time.time() + 5
        while time.time() < deadline:
            held1 = metrics(gw).get("infergate_buffered_bytes", 0)
            if held1 < 64 << 10:
                break
            time.sleep(0.1)
        check(held0 > 10 * size, "reader: 40 answers of /metrics (%d bytes each) held while "
              "the client reads slowly (%d)" % (size, held0))
        check(cut and got[0] < 40 * size // 2,
              "reader: a client reading ~1.2 MiB/s behind 40 waiting answers (each owing "
              "256 KiB per period) is cut within 4 periods (cut %s after %.1fs, read %d of %d)"
              % (cut, t_cut, got[0], 40 * size))
        check(held1 < 64 << 10, "reader: ... and its bytes are released (%d held after)" % held1)
        check(metrics(gw).get("infergate_stalled_total", 0) >= 1, "reader: counted as stalled")


def case_hold():
    """A body sent fast up to most of its length, then trickled at 4 times
    min_rate_bytes per period: under the old rule (min_rate alone) it held
    its bytes for as long as the client liked (a 6 MiB body for 68 bytes/s
    at the defaults); a period must now also move 1/16 of what the request
    holds. h1: 408 and the bytes released; h2: the stream (alone on its
    connection) ends with GOAWAY, the bytes released."""
    with Gateway({"demo": {"model": DEMO_MODEL}}, idle_timeout_ms=str(int(PERIOD_S * 1000)),
                 header_timeout_ms="20000") as gw:
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: text/csv\r\nContent-Length: 6291456\r\n\r\n" +
                  b"1,2,3,4\n" * (4 << 17))
        t = time.time()
        s.settimeout(0.25)
        resp = b""
        while time.time() - t < 6 * PERIOD_S:
            try:
                s.sendall(b"1,2,3,4\n" * 512)  # 4 KiB per 0.25 s: 16 KiB/s
            except OSError:
                break
            try:
                b = s.recv(65536)
                if not b:
                    break
                resp += b
                if b"\r\n\r\n" in resp:
                    break
            except socket.timeout:
                pass
        took = time.time() - t
        check(resp.startswith(b"HTTP/1.1 408 ") and took < 3 * PERIOD_S,
              "hold: h1: 4 MiB of a 6 MiB body, then 16 KiB/s (4 x min_rate): 408 within 3 "
              "periods (%r after %.1fs)" % (resp[:40], took))
        s.close()
        held = metrics(gw).get("infergate_buffered_bytes", 0)
        check(held < 64 << 10, "hold: h1: its bytes are released (%d held)" % held)

        s = h2_open(gw.port)
        enc = hpack.Encoder()
        s.sendall(frame(HEADERS, END_HEADERS, 1, enc.encode([
            (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
            (":path", "/endpoints/demo/invocations"), ("content-type", "text/csv"),
            ("content-length", "1048576")])))
        body = b"1,2,3,4\n" * (900 << 7)  # 900 KiB: within the first stream window
        for i in range(0, len(body), 16384):
            s.sendall(frame(DATA, 0, 1, body[i:i + 16384]))
        t = time.time()
        sent = len(body)
        while time.time() - t < 6 * PERIOD_S and not gone(s):
            try:
                s.sendall(frame(DATA, 0, 1, b"1,2,3,4\n" * 512))
                sent += 4096
            except OSError:
                break
            time.sleep(0.25)
        took = time.time() - t
        check(gone(s) and took < 3 * PERIOD_S and sent < 1048576,
              "hold: h2: 900 KiB then 16 KiB/s: the stream is cut within 3 periods (%s after "
              "%.1fs)" % (gone(s), took))
        s.close()
        time.sleep(0.3)
        deadline = time.time() + 4
        while time.time() < deadline:
            held = metrics(gw).get("infergate_buffered_bytes", 0)
            if held < 64 << 10:
                break
            time.sleep(0.1)
        check(held < 64 << 10, "hold: h2: its bytes are released (%d held)" % held)


def case_rapid():
    with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
        s = h2_open(gw.port)
        enc = hpack.Encoder()
        hdr = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
               (":path", "/endpoints/demo/invocations"), ("content-type", "text/csv")]
        sent, t = 0, time.time()
        try:
            for k in range(50):
                out = b""
                for i in range(100):
                    sid = 1 + 2 * (k * 100 + i)
                    out += frame(HEADERS, END_HEADERS, sid, enc.encode(hdr))
                    out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
                s.sendall(out)
                sent += 100
        except OSError:
            pass
        frames, eof = read_frames(s, 3.0)
        goaways = [struct.unpack(">II", p[:8]) for t_, _, _, p in frames if t_ == GOAWAY]
        check(eof or goaways, "rapid: %d HEADERS+RST_STREAM in %.2fs: the gateway ends the "
              "connection (GOAWAY %r, eof %s)" % (sent, time.time() - t, goaways, eof))
        s.close()
        check_eq(ping_status(gw), 200, "rapid: the gateway still answers")
        time.sleep(0.3)
        m = metrics(gw)
        check(m.get("infergate_buffered_bytes", 0) <= 8192,
              "rapid: nothing held afterwards (%r)" % m.get("infergate_buffered_bytes"))


def case_madeyoureset():
    """Streams the client would make the gateway reset (CVE-2025-8671,
    MadeYouReset): a whole request (HEADERS, DATA with END_STREAM: handed to
    the gateway), then WINDOW_UPDATE 0 or a PRIORITY on itself on its stream.
    Were those stream errors, each reset would free a stream slot while the
    gateway's work went on (nghttp2 1.52 counts only the client's own
    RST_STREAMs). nghttp2 1.52 makes both connection errors: the first
    ends the connection (GOAWAY PROTOCOL_ERROR, last stream 1)."""
    hdr = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
           (":path", "/endpoints/demo/invocations"), ("content-type", "text/csv")]
    row = (",".join(["0"] * 64) + "\n").encode()
    with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
        for name, bad in (("WINDOW_UPDATE 0", lambda sid: frame(WINDOW_UPDATE, 0, sid,
                                                                  struct.pack(">I", 0))),
                          ("PRIORITY on itself", lambda sid: frame(PRIORITY, 0, sid,
                                                                     struct.pack(">IB", sid, 15)))):
            s = h2_open(gw.port)
            enc = hpack.Encoder()
            out = b""
            for i in range(100):
                sid = 1 + 2 * i
                out += frame(HEADERS, END_HEADERS, sid, enc.encode(hdr))
                out += frame(DATA, END_STREAM, sid, row) + bad(sid)
            try:
                s.sendall(out)
            except OSError:
                pass
            frames, eof = read_frames(s, 2.0)
            goaways = [struct.unpack(">II", p[:8]) for t_, _, _, p in frames if t_ == GOAWAY]
            check(eof and goaways == [(1, 1)],
                  "madeyoureset: %s after a whole request: the connection ends at the first "
                  "(GOAWAY last stream 1, PROTOCOL_ERROR) (%r)" % (name, goaways))
            s.close()
        check_eq(ping_status(gw), 200, "madeyoureset: the gateway still answers")


def case_cont():
    with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
        s = h2_open(gw.port)
        enc = hpack.Encoder()
        block = enc.encode([(":method", "GET"), (":scheme", "http"),
                            (":authority", "127.0.0.1"), (":path", "/ping")])
        out = frame(HEADERS, 0, 1, block[:1])
        for _ in range(100):
            out += frame(CONTINUATION, 0, 1, b"")
        try:
            s.sendall(out)
        except OSError:
            pass
        frames, eof = read_frames(s, 3.0)
        goaways = [struct.unpack(">II", p[:8]) for t_, _, _, p in frames if t_ == GOAWAY]
        check(eof and goaways and goaways[-1][1] == 11,
              "cont: 100 empty CONTINUATION frames: GOAWAY(ENHANCE_YOUR_CALM) and the end at "
              "once (it used to end with no GOAWAY) (%r, eof %s)" % (goaways, eof))
        s.close()
        check_eq(ping_status(gw), 200, "cont: the gateway still answers")


def case_chunkext():
    with Gateway({"demo": {"model": DEMO_MODEL}}, idle_timeout_ms=str(int(PERIOD_S * 1000)),
                 header_timeout_ms="20000") as gw:
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=")
        t = time.time()
        s.settimeout(0.05)
        resp = b""
        while time.time() - t < 5 * PERIOD_S:
            try:
                s.sendall(b"a" * 64)
            except OSError:
                break
            try:
                b = s.recv(65536)
                if not b:
                    break
                resp += b
                if b"\r\n\r\n" in resp:
                    break
            except socket.timeout:
                pass
        check(resp.startswith(b"HTTP/1.1 408 "), "chunkext: a chunk extension trickled at 1280 "
              "bytes/s, none of it body: 408 (%r after %.1fs)" % (resp[:60], time.time() - t))
        s.close()


def case_lengths():
    """Lengths near 2^64: refused with the right status, never wrapped."""
    with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
        head = (b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: text/csv\r\n")
        got = h1_exchange(gw.port, head + b"Content-Length: 18446744073709551615\r\n\r\n1")
        check(got.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in got,
              "lengths: h1 Content-Length 2^64-1: 400 and close (%r)" % got[:60])
        got = h1_exchange(gw.port, head + b"Content-Length: 18446744073709551\r\n\r\n1")
        check(got.startswith(b"HTTP/1.1 413 ") and
              b"Request body of 18446744073709551 bytes exceeds the maximum of 6291456 bytes."
              in got and b"Connection: close" in got,
              "lengths: h1 Content-Length 2^54: 413 naming it, close (%r)" % got[:60])
        got = h1_exchange(gw.port, head + b"Transfer-Encoding: chunked\r\n\r\n"
                          b"1000000000000000000\r\n")
        check(got.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in got,
              "lengths: h1 chunk size past 2^64: 400 and close (%r)" % got[:60])
        s = h2_open(gw.port)
        enc = hpack.Encoder()
        s.sendall(frame(HEADERS, END_HEADERS, 1, enc.encode([
            (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
            (":path", "/endpoints/demo/invocations"), ("content-type", "text/csv"),
            ("content-length", "9223372036854775807")])) + frame(DATA, 0, 1, b"1,2\n"))
        frames, _ = read_frames(s, 1.5)
        dec = hpack.Decoder()
        status = [dict(dec.decode(p)).get(":status") for t_, _, sid, p in frames
                  if t_ == HEADERS and sid == 1]
        rst = [struct.unpack(">I", p)[0] for t_, _, sid, p in frames
               if t_ == RST_STREAM and sid == 1]
        check(status == ["413"] and rst == [0],
              "lengths: h2 content-length 2^63-1: 413, then RST_STREAM(NO_ERROR) (%r, %r)"
              % (status, rst))
        s.close()
        check_eq(ping_status(gw), 200, "lengths: the gateway still answers")


def case_late():
    """The gateway stopped (SIGSTOP) past an idle connection's deadline while its client
    sends a request: on SIGCONT the request is read and answered, not cut as idle (the
    loop's timer and the deferred read fire in the same turn; the client was on time,
    the gateway late). Once the bytes are looked at, the idle rule applies as before."""
    with Gateway({"demo": {"model": DEMO_MODEL}}, idle_timeout_ms="1000") as gw:
        s = h2_open(gw.port)
        read_frames(s, 0.3)  # the server's SETTINGS
        enc = hpack.Encoder()
        req = frame(HEADERS, END_HEADERS | END_STREAM, 1,
                    enc.encode([(":method", "GET"), (":scheme", "http"),
                                (":authority", "127.0.0.1"), (":path", "/ping")]))
        os.kill(gw.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)  # the connection's idle deadline passes while stopped
            s.sendall(req)
            time.sleep(0.1)
        finally:
            os.kill(gw.proc.pid, signal.SIGCONT)
        frames, eof = read_frames(s, 3.0)
        dec = hpack.Decoder()
        status = [dict(dec.decode(p)).get(":status") for t_, _, sid, p in frames
                  if t_ == HEADERS and sid == 1]
        goaways = [struct.unpack(">II", p[:8]) for t_, _, _, p in frames if t_ == GOAWAY]
        check(status == ["200"] and not any(g[0] == 0 for g in goaways),
              "late: a request sent while the gateway was stopped past the connection's idle "
              "deadline is answered on SIGCONT, not cut as idle (status %r, GOAWAY %r)"
              % (status, goaways))
        check(eof and goaways == [(1, 0)],
              "late: ... then, idle again, the connection is closed by the idle rule "
              "(GOAWAY(last stream 1, NO_ERROR) %r, eof %s)" % (goaways, eof))
        s.close()


CASES = os.environ.get("ADV_CASES", "idle late slow reader hold rapid madeyoureset cont chunkext lengths").split()
for case in [globals()["case_" + n] for n in CASES]:
    t0 = time.time()
    try:
        case()
    except Exception as e:  # noqa: BLE001 - a crash of the test is a failed check
        import traceback
        traceback.print_exc()
        check(False, "%s raised %r" % (case.__name__, e))
    print("  %s: %.1fs" % (case.__name__, time.time() - t0), flush=True)
finish()
