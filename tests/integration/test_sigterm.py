"""SIGTERM races: the drain answers every request the gateway accepted, over
HTTP/1.1 and HTTP/2, and exits 0.

A request counts as accepted from its first byte the gateway read. Each
round starts the gateway, starts clients that keep sending (HTTP/1.1
keep-alive loops, bodies sent in two pieces with a pause between them,
requests whose first byte goes out alone and the rest later, a client that
sends its first request at a random moment, HTTP/2 connections opening
streams whose bodies come in pieces), and sends SIGTERM at a random moment,
so that the signal lands mid-body, just after a request's first byte,
between keep-alive requests, between HTTP/2 streams.

Every request must end in exactly one of:
  answered  a complete 200 with the exact predictions;
  refused   a refusal that proves the gateway never accepted it:
            h1: the connection ended (EOF or reset) before any byte of the
                request's response, and no response on that connection was
                cut; or the connection was refused;
            h2: its stream id is above the last-stream-id of the final
                GOAWAY, or the stream was reset with REFUSED_STREAM.
A request whose first byte reached the gateway well before the signal
(ACCEPT_MARGIN earlier, on a connection already open) must be answered.
Every HTTP/2 connection must see the shutdown notice and then the final
GOAWAY. The gateway exits 0 within drain_timeout_ms; its final log line
says the drain ended with nothing cut off, and its count of requests
answered during the drain is no more than the answers the clients got;
the access log has exactly one 200 line per answer the clients got.
"""

import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.connection import ConnectionState

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows, expected_body,
                   finish, load_model)

ROUNDS = int(os.environ.get("SIGTERM_ROUNDS", "50"))
os.environ["INFERGATE_LOG_LEVEL"] = "info"  # the drain's lines (the config says warn)
ACCEPT_MARGIN = 0.15  # s: a request's first byte this long before SIGTERM must be answered
DRAIN_MS = 5000
MAX_H2_LAST = (1 << 31) - 1

demo = load_model(DEMO_MODEL)
rows = digits_rows(3)
BODY = csv_body(rows).encode()
WANT = expected_body(demo, rows, "text/csv").encode()
PATH = "/endpoints/demo/invocations"


def h1_request():
    return (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: text/csv\r\n"
            b"Accept: text/csv\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Rec:
    """What the clients of one round saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reqs = []  # dicts: proto, first (time of first byte sent), outcome, detail
        self.h2conns = []  # dicts: goaways [(last_id, code)]
        self.t_signal = None

    def add(self, **kw):
        with self.lock:
            self.reqs.append(kw)


def recv_response(sock, buf):
    """One HTTP/1.1 response from sock (buf: bytes already read).
    -> (status, headers, body, rest, None) or (None, None, None, buf, why)
    where why is 'eof-empty' (nothing of it came), 'cut' or 'bad'."""
    while b"\r\n\r\n" not in buf:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        except socket.timeout:
            return None, None, None, buf, "timeout"
        if not b:
            return None, None, None, buf, "eof-empty" if not buf else "cut"
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, None, None, buf, "bad"
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        try:
            b = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        except socket.timeout:
            return None, None, None, buf, "timeout"
        if not b:
            return None, None, None, buf, "cut"
        rest += b
    return status, hdrs, rest[:n], rest[n:], None


def sendall(sock, data):
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def h1_client(rec, port, mode, stop_at, rnd):
    """One keep-alive connection sending requests in <mode> until it ends."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        rec.add(proto="h1", first=None, outcome="refused", detail="connect refused")
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    opened = time.time()
    buf = b""
    if mode == "late":
        time.sleep(rnd.uniform(0, 0.4))
    while time.time() < stop_at:
        req = h1_request()
        first = time.time()
        if mode == "pieces":
            cut = rnd.randrange(1, len(req))
            ok = sendall(sock, req[:cut])
            time.sleep(rnd.uniform(0, 0.25))
            ok = ok and sendall(sock, req[cut:])
        elif mode == "firstbyte":
            ok = sendall(sock, req[:1])
            time.sleep(rnd.uniform(0, 0.25))
            ok = ok and sendall(sock, req[1:])
        else:
            ok = sendall(sock, req)
        status, hdrs, body, buf, why = recv_response(sock, buf)
        # the first byte only counts as read by the gateway on a connection
        # it had accepted: opened before the signal
        first_ok = first if opened < (rec.t_signal or 1e18) else None
        if why is None:
            good = status == 200 and body == WANT
            rec.add(proto="h1", first=first_ok, outcome="answered" if good else "bad",
                    detail="%s %r" % (status, body[:80]))
            if hdrs.get("connection", "").lower() == "close":
                # nothing may follow a close
                try:
                    sock.settimeout(2)
                    extra = buf or sock.recv(1)
                except OSError:
                    extra = b""
                if extra:
                    rec.add(proto="h1", first=None, outcome="bad", detail="bytes after close")
                break
            continue
        if why == "eof-empty" or (not ok and not buf):
            rec.add(proto="h1", first=first_ok, outcome="refused", detail="closed, no byte")
        else:
            rec.add(proto="h1", first=first_ok, outcome="bad", detail="response " + why)
        break
    sock.close()


class H2Client:
    """One HTTP/2 connection opening streams with bodies in pieces until the
    final GOAWAY; every stream's outcome is recorded."""

    def __init__(self, rec, port, stop_at, rnd, par):
        self.rec, self.port, self.stop_at, self.rnd, self.par = rec, port, stop_at, rnd, par
        self.streams = {}  # id -> dict(first, status, data, ended, reset)
        self.pending = []  # (time, stream id, bytes): body pieces to send
        self.goaways = []
        self.eof = False

    def run(self):
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except OSError:
            self.rec.add(proto="h2", first=None, outcome="refused", detail="connect refused")
            return
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened = time.time()
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.c.initiate_connection()
        self.flush()
        deadline = time.time() + 15
        while not self.eof and time.time() < deadline:
            now = time.time()
            final = any(g[0] != MAX_H2_LAST for g in self.goaways)
            open_ = [s for s in self.streams.values() if not s["ended"] and not s["reset"]]
            if not final and now < self.stop_at and len(open_) < self.par:
                self.start_stream()
            self.send_due()
            if final and not open_:
                break
            wait = 0.02
            if self.pending:
                wait = max(0, min(wait, min(p[0] for p in self.pending) - time.time()))
            r, _, _ = select.select([self.sock], [], [], wait)
            if r:
                self.read()
        self.sock.close()
        self.report()

    def flush(self):
        data = self.c.data_to_send()
        if data and not sendall(self.sock, data):
            self.eof = True

    def start_stream(self):
        try:
            sid = self.c.get_next_available_stream_id()
            self.c.send_headers(sid, [(":method", "POST"), (":path", PATH), (":scheme", "http"),
                                      (":authority", "t"), ("content-type", "text/csv"),
                                      ("accept", "text/csv"),
                                      ("content-length", str(len(BODY)))])
        except h2.exceptions.ProtocolError:
            return
        self.streams[sid] = dict(first=time.time(), status=None, data=b"", ended=False,
                                 reset=None)
        self.flush()
        cut = self.rnd.randrange(0, len(BODY))
        t = time.time() + self.rnd.uniform(0, 0.2)
        self.pending.append((time.time(), sid, BODY[:cut], False))
        self.pending.append((t, sid, BODY[cut:], True))

    def send_due(self):
        now = time.time()
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, sid, data, end in due:
            try:
                self.c.send_data(sid, data, end_stream=end)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError,
                    h2.exceptions.FlowControlError):
                continue
        self.flush()

    def read(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            self.eof = True
            return
        self.inbuf = getattr(self, "inbuf", b"") + data
        # Frame by frame: python-h2 closes its state machine on any GOAWAY,
        # even the shutdown notice, and would then refuse the responses
        # that RFC 9113 6.8 lets follow it; reopen it after each GOAWAY
        # (streams above a final GOAWAY's last id are never opened).
        while len(self.inbuf) >= 9:
            n = 9 + int.from_bytes(self.inbuf[:3], "big")
            if len(self.inbuf) < n:
                break
            frame, self.inbuf = self.inbuf[:n], self.inbuf[n:]
            try:
                events = self.c.receive_data(frame)
            except h2.exceptions.ProtocolError as e:
                self.goaways.append((-1, repr(e)))
                self.eof = True
                return
            # before the next frame: python-h2 drops what it has queued
            # (a PING ack) when a GOAWAY comes
            self.flush()
            self.handle(events)
            if self.c.state_machine.state == ConnectionState.CLOSED and frame[3] == 7:
                self.c.state_machine.state = ConnectionState.CLIENT_OPEN
        self.flush()

    def handle(self, events):
        for ev in events:
            s = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived) and s is not None:
                s["status"] = dict(ev.headers).get(b":status")
            elif isinstance(ev, h2.events.DataReceived):
                if s is not None:
                    s["data"] += ev.data
                self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and s is not None:
                s["ended"] = True
            elif isinstance(ev, h2.events.StreamReset) and s is not None:
                s["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaways.append((ev.last_stream_id, ev.error_code))

    def report(self):
        final = [g for g in self.goaways if g[0] != MAX_H2_LAST]
        last = final[-1][0] if final else None
        self.rec.h2conns.append(dict(goaways=self.goaways, eof=self.eof))
        for sid, s in sorted(self.streams.items()):
            first = s["first"] if self.opened < (self.rec.t_signal or 1e18) else None
            if s["ended"] and s["status"] == b"200" and s["data"] == WANT:
                self.rec.add(proto="h2", first=first, outcome="answered", detail=sid)
            elif s["reset"] == 7 or (last is not None and sid > last and s["status"] is None):
                self.rec.add(proto="h2", first=first, outcome="refused",
                             detail="stream %d, last %s, reset %s" % (sid, last, s["reset"]))
            else:
                self.rec.add(proto="h2", first=first, outcome="bad",
                             detail="stream %d: status %s ended %s reset %s data %r, goaways %r"
                             % (sid, s["status"], s["ended"], s["reset"], s["data"][:60],
                                self.goaways))


def log_lines(gw):
    out = []
    for line in gw.stderr().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"msg": "NOT JSON: " + line})
    return out


def final_line(lines):
    """The drain's last log line's message, or None."""
    for j in reversed(lines):
        if "drain" in j.get("msg", ""):
            return j["msg"]
    return None


def one_round(i, rnd):
    gw = Gateway({"demo": {"model": DEMO_MODEL,
                           "max_delay_us": str(rnd.choice([1000, 20000, 80000]))}},
                 drain_timeout_ms=str(DRAIN_MS), access_log="on")
    rec = Rec()
    stop_at = time.time() + 0.8
    threads = []
    for mode in ("loop", "loop", "pieces", "pieces", "firstbyte", "firstbyte", "late"):
        threads.append(threading.Thread(target=h1_client,
                                        args=(rec, gw.port, mode, stop_at, random.Random(rnd.random()))))
    for par in (1, 4):
        cl = H2Client(rec, gw.port, stop_at, random.Random(rnd.random()), par)
        threads.append(threading.Thread(target=cl.run))
    for t in threads:
        t.start()
    time.sleep(rnd.uniform(0.05, 0.35))
    rec.t_signal = time.time()
    gw.proc.send_signal(signal.SIGTERM)
    try:
        code = gw.proc.wait(timeout=DRAIN_MS / 1000 + 5)
    except Exception:  # noqa: BLE001 - judged below
        gw.proc.kill()
        code = "hung"
    elapsed = time.time() - rec.t_signal
    for t in threads:
        t.join(20)
    tag = "round %d" % i
    ok = check_eq(code, 0, "%s: exit status after SIGTERM" % tag)
    ok &= check(elapsed < DRAIN_MS / 1000, "%s: drained in %.2fs" % (tag, elapsed))
    bad = [r for r in rec.reqs if r["outcome"] == "bad"]
    ok &= check(not bad, "%s: every request answered exactly or refused: %r" % (tag, bad[:3]))
    lost = [r for r in rec.reqs if r["outcome"] != "answered" and r["first"] is not None
            and r["first"] < rec.t_signal - ACCEPT_MARGIN]
    ok &= check(not lost, "%s: requests sent %.2fs before the signal were answered: %r"
                % (tag, ACCEPT_MARGIN, lost[:3]))
    for c in rec.h2conns:
        notice = [g for g in c["goaways"] if g[0] == MAX_H2_LAST]
        final = [g for g in c["goaways"] if g[0] != MAX_H2_LAST]
        ok &= check(bool(notice and final) and final[-1][1] == 0 and
                    c["goaways"].index(notice[0]) < c["goaways"].index(final[-1]),
                    "%s: h2 connection saw the notice, then the final GOAWAY(NO_ERROR): %r"
                    % (tag, c["goaways"]))
    answered = sum(1 for r in rec.reqs if r["outcome"] == "answered")
    lines = log_lines(gw)
    msg = final_line(lines) or ""
    m = re.search(r"(\d+) requests? answered", msg)
    ok &= check(msg.startswith("drained") and m is not None and
                re.search(r"\b(none|0) cut off", msg) is not None,
                "%s: final drain log line, nothing cut off: %r" % (tag, msg))
    ok &= check(m is not None and int(m.group(1)) <= answered,
                "%s: final log line counts no more answers than the clients got (%d): %r"
                % (tag, answered, msg))
    acc = sum(1 for j in lines if j.get("msg") == "access" and j.get("status") == 200 and
              j.get("endpoint") == "demo")
    ok &= check(acc == answered, "%s: %d access-log 200s, clients got %d answers"
                % (tag, acc, answered))
    if not ok:
        print("  round %d log tail:\n%s" % (i, gw.stderr()[-1500:]), flush=True)
    return answered, sum(1 for r in rec.reqs if r["outcome"] == "refused")


t0 = time.time()
seed = int(os.environ.get("SIGTERM_SEED", str(int(t0))))
rnd = random.Random(seed)
print("seed %d, %d rounds" % (seed, ROUNDS), flush=True)
tot_a = tot_r = 0
for i in range(ROUNDS):
    a, r = one_round(i, rnd)
    tot_a += a
    tot_r += r
print("%d rounds in %.1fs: %d answered, %d refused before acceptance"
      % (ROUNDS, time.time() - t0, tot_a, tot_r), flush=True)
check(tot_a > ROUNDS * 10, "the races answered requests (%d)" % tot_a)

# A client that stalls cannot hold the drain to drain_timeout_ms: a request
# whose body stopped coming is answered 408 once no byte has moved for 1 s
# (HTTP_DRAIN_STALL_US), over both protocols, and the gateway exits 0.
gw = Gateway({"demo": {"model": DEMO_MODEL}}, drain_timeout_ms="10000")
h1s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
h1s.sendall(h1_request()[:-20])
h2c = H2Client(Rec(), gw.port, 0, random.Random(1), 0)
h2c.sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
h2c.opened = time.time()
h2c.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
h2c.c.initiate_connection()
h2c.start_stream()
h2c.pending = [p for p in h2c.pending if not p[3]]  # never the last piece
h2c.send_due()
time.sleep(0.3)
t0 = time.time()
gw.proc.send_signal(signal.SIGTERM)
status, hdrs, body, _, why = recv_response(h1s, b"")
check_eq((status, (hdrs or {}).get("connection"), (hdrs or {}).get("x-amzn-errortype")),
         (408, "close", "ValidationError"), "stalled h1 body at SIGTERM: 408, then close (%s)"
         % why)
deadline = time.time() + 5
sid = max(h2c.streams)
while not (h2c.streams[sid]["ended"] or h2c.eof) and time.time() < deadline:
    if select.select([h2c.sock], [], [], 0.1)[0]:
        h2c.read()
check_eq((h2c.streams[sid]["status"], h2c.streams[sid]["ended"]), (b"408", True),
         "stalled h2 body at SIGTERM: 408")
code = gw.proc.wait(timeout=15)
took = time.time() - t0
check_eq(code, 0, "stalled clients: exit 0")
check(took < 3, "stalled clients: drained in %.2fs, not at drain_timeout_ms" % took)
h1s.close()
h2c.sock.close()

# After a drain nothing listens on the port.
gw = Gateway({"demo": {"model": DEMO_MODEL}})
port = gw.port
check_eq(gw.stop(), 0, "idle gateway exits 0 on SIGTERM")
s = socket.socket()
try:
    s.connect(("127.0.0.1", port))
    refused = False
except ConnectionRefusedError:
    refused = True
s.close()
check(refused, "listener closed after drain")
finish()
