"""bin/infergate-cli, the streaming transform client, against a small HTTP/2
server of this file (python3-h2) that plays the /transform contract: each
non-blank input line comes back as '>' + the line upper-cased + '\\n' as soon
as it arrives (full duplex); the endpoint 'nope' gets a 400 with a JSON error
body; a line 'boom' resets the stream with INTERNAL_ERROR after the lines
before it; a line 'die' closes the connection. It can read slowly, so that
flow control must slow the client down (its peak RSS is checked while 200 MB
go through). Exact output bytes, exit statuses and messages throughout."""

import hashlib
import json
import os
import pty
import re
import select
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from iglib import (DEMO_MODEL, DIGITS, ROOT, Gateway, LoopbackServer, check, check_eq, curl,
                   digits_rows, expected_body, finish, free_port, load_model, run)

CLI = os.path.join(ROOT, os.path.dirname(os.environ.get("INFERGATE_BIN", "bin/infergate"))
                   or "bin", "infergate-cli")
if not os.path.exists(CLI):
    CLI = os.path.join(ROOT, "bin", "infergate-cli")
TMP = tempfile.mkdtemp(prefix="ig-cli-")
# Under ASan (build/san) freed memory waits in a quarantine (256 MiB by
# default) and shadow memory adds to the RSS: a small quarantine, a larger cap.
SAN = os.sep + os.path.join("build", "san") + os.sep in CLI
ENV = dict(os.environ)
if SAN:
    ENV["ASAN_OPTIONS"] = ":".join(filter(None, [ENV.get("ASAN_OPTIONS"), "quarantine_size_mb=4",
                                                 "thread_local_quarantine_size_kb=64"]))
RSS_CAP_KIB = (64 if SAN else 16) * 1024

SUMMARY = re.compile(r"^infergate-cli: (\d+) records in (\d+\.\d\d) s \((\d+) records/s\), "
                     r"(\d+) bytes sent, (\d+) bytes received$")


def echo(data):
    """What the fake server answers for <data>: the contract's one line per
    non-blank record (LF or CRLF), here '>' + upper-cased."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            out.append(b">" + line.upper() + b"\n")
    return b"".join(out)


class Stream:
    def __init__(self, path):
        self.path = path
        self.frag = b""
        self.out = b""
        self.ended = False  # request END_STREAM came
        self.closed = False  # answered or reset: nothing more to send
        self.sink = False  # the input is ignored


class FakeTransform(LoopbackServer):
    """The contract's server on a free loopback port, h2c or TLS (<tls> =
    (cert, key), <alpn> the protocols it accepts). <slow>: seconds slept
    after each read of at most 64 KiB, with 256 KiB windows (else 256 KiB
    reads, a 1 MiB stream window and a 16 MiB connection window); with
    <big_window>, 16 MiB windows."""

    def __init__(self, tls=None, alpn=("h2",), slow=0.0, host="127.0.0.1", big_window=False):
        self.slow = slow
        self.big_window = big_window
        self.requests = []  # [(path, {header: value})]
        self.bytes_in = 0
        self.lock = threading.Lock()
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
            self.ctx.set_alpn_protocols(list(alpn))
        LoopbackServer.__init__(self, host, backlog=16)
        self.url = "%s://%s" % ("https" if tls else "http", self.hostport)

    def _serve(self, sock):
        try:
            if self.ctx:
                sock = self.ctx.wrap_socket(sock, server_side=True)
            self._h2(sock)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _h2(self, sock):
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        window = (16 << 20) if self.big_window else (256 << 10) if self.slow else (1 << 20)
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        conn.increment_flow_control_window((256 << 10) if self.slow and not self.big_window
                                           else (16 << 20))
        sock.sendall(conn.data_to_send())
        streams = {}
        while True:
            data = sock.recv(65536 if self.slow else 262144)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    hdrs = dict(ev.headers)
                    with self.lock:
                        self.requests.append((hdrs.get(":path"), hdrs))
                    st = streams[ev.stream_id] = Stream(hdrs.get(":path", ""))
                    if not self._answer_headers(conn, ev.stream_id, st, hdrs):
                        st.closed = True
                elif isinstance(ev, h2.events.DataReceived):
                    with self.lock:
                        self.bytes_in += len(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    st = streams.get(ev.stream_id)
                    if st and not st.closed and not st.sink and self._lines(conn, ev.stream_id, st, ev.data) == "die":
                        self._flush(conn, streams)
                        sock.sendall(conn.data_to_send())
                        sock.shutdown(socket.SHUT_RDWR)
                        return
                elif isinstance(ev, h2.events.StreamEnded):
                    st = streams.get(ev.stream_id)
                    if st and not st.closed:
                        if st.frag.strip():
                            st.out += echo(st.frag)
                        st.frag = b""
                        st.ended = True
                elif isinstance(ev, h2.events.StreamReset):
                    if ev.stream_id in streams:
                        streams[ev.stream_id].closed = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self._flush(conn, streams)
                    sock.sendall(conn.data_to_send())
                    return
            self._flush(conn, streams)
            sock.sendall(conn.data_to_send())
            if self.slow:
                time.sleep(self.slow)

    def _answer_headers(self, conn, sid, st, hdrs):
        """The response's headers (and all of an error); False when the
        stream needs nothing more."""
        name = st.path.rsplit("/", 1)[-1]
        if name == "nope":
            body = b'{"message":"Endpoint nope does not exist."}'
            conn.send_headers(sid, [(":status", "400"), ("content-type", "application/json"),
                                    ("x-amzn-errortype", "ValidationError"),
                                    ("content-length", str(len(body)))])
            conn.send_data(sid, body, end_stream=True)
            return False
        if name == "down":
            conn.send_headers(sid, [(":status", "503"), ("content-type", "text/plain")])
            conn.send_data(sid, b"upstream \x1b[31mdown\n", end_stream=True)
            return False
        if name == "endless":  # an error body that never ends
            conn.send_headers(sid, [(":status", "500"), ("x-amzn-errortype", "InternalFailure")])
            st.out = ENDLESS
            st.sink = True
            return True
        if name == "refuse":
            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return False
        if name == "bigheaders":
            conn.send_headers(sid, [(":status", "200")] +
                              [("x-pad-%d" % i, "p" * 4000) for i in range(20)])
            return True
        conn.send_headers(sid, [(":status", "200"), ("content-type", hdrs.get("accept", ""))])
        if name == "early":
            conn.send_data(sid, b">EARLY\n", end_stream=True)
            return False
        return True

    def _lines(self, conn, sid, st, data):
        parts = (st.frag + data).split(b"\n")
        st.frag = parts.pop()
        out = []
        for line in parts:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line in (b"boom", b"die"):
                st.out += b"".join(out)
                if line == b"boom":
                    st.closed = True
                    self._send(conn, sid, st)
                    conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
                return line.decode()
            if line.strip():
                out.append(b">" + line.upper() + b"\n")
        st.out += b"".join(out)
        return None

    def _send(self, conn, sid, st):
        while st.out:
            room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if room <= 0:
                return
            conn.send_data(sid, st.out[:room])
            st.out = st.out[room:]

    def _flush(self, conn, streams):
        for sid, st in streams.items():
            if st.closed:
                continue
            self._send(conn, sid, st)
            if st.ended and not st.out:
                conn.end_stream(sid)
                st.closed = True


ENDLESS = b'{"message":"' + b"x" * (4 << 20)


def cli(*args, input=None, timeout=120, **kw):
    return run([CLI] + list(args), input=input, timeout=timeout, **kw)


def write_file(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def stderr_lines(r):
    return r.stderr.decode(errors="replace").splitlines()


def check_summary(line, records, sent, received, what):
    m = SUMMARY.match(line or "")
    if not check(m is not None, "%s: summary line %r" % (what, line)):
        return
    check_eq((int(m.group(1)), int(m.group(4)), int(m.group(5))), (records, sent, received),
             what + ": summary counts (records, sent, received)")


def transform(srv, *args, endpoint="demo", **kw):
    return cli("transform", "--url", srv.url, "--endpoint", endpoint, *args, **kw)


# ---- usage ----------------------------------------------------------------

with open(os.path.join(ROOT, "include", "infergate", "version.h")) as f:
    VERSION = re.search(r'#define IG_VERSION "([^"]+)"', f.read()).group(1)

r = cli("--help")
check_eq((r.returncode, r.stderr), (0, b""), "--help: exit 0, nothing on stderr")
check(r.stdout.startswith(b"usage: infergate-cli transform --url URL --endpoint NAME"),
      "--help: the usage line: %r" % r.stdout[:80])
r = cli("transform", "-h")
check(r.returncode == 0 and r.stdout.startswith(b"usage: "), "transform -h: the usage")
r = cli("--version")
check_eq(r.returncode, 0, "--version: exit 0")
check(re.match(r"^infergate-cli %s \(build [^)]+\)\n$" % re.escape(VERSION), r.stdout.decode()),
      "--version: %r" % r.stdout)

HINT = "Try 'infergate-cli --help'."
for argv, msg in [
        ([], "a command is missing: infergate-cli transform ..."),
        (["frobnicate"], "unknown command 'frobnicate' (the only one is 'transform')"),
        (["transform", "--endpoint", "x"], "--url is missing"),
        (["transform", "--url", "http://127.0.0.1:1"], "--endpoint is missing"),
        (["transform", "--endpoint", "x", "--url", "ftp://h:1"],
         "--url: expected http://HOST:PORT or https://HOST:PORT, got 'ftp://h:1'"),
        (["transform", "--endpoint", "x", "--url", "http://127.0.0.1:99999"],
         "--url: expected http://HOST:PORT or https://HOST:PORT, got 'http://127.0.0.1:99999'"),
        (["transform", "--endpoint", "x", "--url", "http://h:8080/endpoints"],
         "--url: expected http://HOST:PORT or https://HOST:PORT, got 'http://h:8080/endpoints'"),
        (["transform", "--endpoint", "x", "--url", "http://:8080"],
         "--url: expected http://HOST:PORT or https://HOST:PORT, got 'http://:8080'"),
        (["transform", "--endpoint", "x", "--url", "http://[::1:8080"],
         "--url: expected http://HOST:PORT or https://HOST:PORT, got 'http://[::1:8080'"),
        (["transform", "--endpoint", "", "--url", "http://h:1"], "--endpoint: empty name"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--errors", "maybe"],
         "--errors: expected 'inline' or 'abort', got 'maybe'"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--join", "output"],
         "--join: expected 'input', got 'output'"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--content-type", "a\r\nb: c"],
         "--content-type: byte 0x0d at offset 1 is not printable ASCII"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--accept", ""],
         "--accept: empty value"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--bogus"],
         "unknown option '--bogus'"),
        (["transform", "--endpoint", "x", "--url"], "--url: a value is missing"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "--insecure"],
         "--insecure and --cacert need an https:// URL"),
        (["transform", "--endpoint", "x", "--url", "http://h:1", "a", "b", "c"],
         "unexpected argument 'c' (at most IN and OUT)")]:
    r = cli(*argv)
    check_eq((r.returncode, stderr_lines(r), r.stdout), (2, ["infergate-cli: " + msg, HINT], b""),
             "usage error %r" % argv)

# ---- streaming --------------------------------------------------------------

srv = FakeTransform()
rows = b"".join(b"%d,abc,%d.5\n" % (i, i * 7) for i in range(1000))
inp = write_file("rows.csv", rows)
out = os.path.join(TMP, "out.txt")
r = transform(srv, inp, out)
check_eq(r.returncode, 0, "file to file: exit 0; stderr: %r" % r.stderr[-300:])
check_eq(read_file(out), echo(rows), "file to file: every prediction, in order")
lines = stderr_lines(r)
check_eq(len(lines), 1, "file to file: one line on stderr (no progress off a terminal)")
check_summary(lines[0] if lines else "", 1000, len(rows), len(echo(rows)), "file to file")
check(b"\r" not in r.stderr, "no progress display when stderr is not a terminal")
check_eq(r.stdout, b"", "file to file: nothing on stdout")
path, hdrs = srv.requests[-1]
check_eq(path, "/transform/demo", "the request's :path")
check_eq({k: v for k, v in hdrs.items() if not k.startswith(":") and k != "user-agent"},
         {"content-type": "text/csv", "accept": "text/csv"},
         "default headers: text/csv both ways, no x-infergate-* header")
check_eq((hdrs.get(":method"), hdrs.get(":scheme"), hdrs.get(":authority")),
         ("POST", "http", "127.0.0.1:%d" % srv.port), "method, scheme, authority")
check_eq(hdrs.get("user-agent"), "infergate-cli/" + VERSION, "user-agent")

r = transform(srv, "--content-type", "application/jsonlines", "--join", "input",
              "--input-filter", "$[1:]", "--output-filter", "$.score", "--errors", "inline",
              inp, out)
check_eq(r.returncode, 0, "every option: exit 0")
check_eq({k: v for k, v in srv.requests[-1][1].items() if not k.startswith(":")
          and k != "user-agent"},
         {"content-type": "application/jsonlines", "accept": "application/jsonlines",
          "x-infergate-join": "input", "x-infergate-input-filter": "$[1:]",
          "x-infergate-output-filter": "$.score", "x-infergate-errors": "inline"},
         "every option: its header, accept defaulting to the content type")
r = transform(srv, "--accept", "application/json", "--errors", "abort", inp, out)
check_eq({k: v for k, v in srv.requests[-1][1].items() if k in ("accept", "x-infergate-errors")},
         {"accept": "application/json", "x-infergate-errors": "abort"}, "--accept, --errors abort")

r = transform(srv, endpoint="a b/c?d", input=b"x\n")
check_eq((r.returncode, r.stdout), (0, b">X\n"), "an odd endpoint name works")
check_eq(srv.requests[-1][0], "/transform/a%20b%2Fc%3Fd", "the endpoint name percent-encoded")

# A host name (localhost: every address tried in turn), a trailing '/', IPv6.
r = cli("transform", "--url", "http://localhost:%d/" % srv.port, "--endpoint", "demo", input=b"x\n")
check_eq((r.returncode, r.stdout, srv.requests[-1][1].get(":authority")),
         (0, b">X\n", "localhost:%d" % srv.port), "http://localhost:PORT/")
v6 = FakeTransform(host="::1")
r = cli("transform", "--url", v6.url, "--endpoint", "demo", input=b"x\n")
check_eq((r.returncode, r.stdout, v6.requests[-1][1].get(":authority")),
         (0, b">X\n", "[::1]:%d" % v6.port), "IPv6: http://[::1]:PORT")
v6.close()

# stdin and stdout: a pipe, "-" and a regular file as stdin.
r = transform(srv, input=rows)
check_eq((r.returncode, r.stdout), (0, echo(rows)), "stdin (a pipe) to stdout")
r = transform(srv, "-", "-", input=rows)
check_eq((r.returncode, r.stdout), (0, echo(rows)), "'-' '-': stdin to stdout")
with open(inp, "rb") as f:
    p = subprocess.run([CLI, "transform", "--url", srv.url, "--endpoint", "demo"], stdin=f,
                       capture_output=True, timeout=60)
check_eq((p.returncode, p.stdout), (0, echo(rows)), "stdin redirected from a regular file")

# CRLF, blank lines, no final newline, an empty input.
data = b"a,1\r\n\r\nb,2\r\n   \nc,3\r\n\nd,4"
r = transform(srv, input=data)
check_eq((r.returncode, r.stdout), (0, b">A,1\n>B,2\n>C,3\n>D,4\n"),
         "CRLF, blank lines and a last line without a newline")
check_summary(stderr_lines(r)[-1], 4, len(data), 20, "CRLF input")
r = transform(srv, input=b"")
check_eq((r.returncode, r.stdout), (0, b""), "an empty input: exit 0, no output")
check_summary(stderr_lines(r)[-1], 0, 0, 0, "an empty input")

# Full duplex: each line's answer is read before the next line is written.
p = subprocess.Popen([CLI, "transform", "--url", srv.url, "--endpoint", "demo"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
got, ok = b"", True
for i in range(20):
    p.stdin.write(b"line %d\n" % i)
    p.stdin.flush()
    want = b">LINE %d\n" % i
    deadline = time.time() + 10
    while not got.endswith(want) and time.time() < deadline:
        rd, _, _ = select.select([p.stdout], [], [], 0.5)
        if rd:
            b = os.read(p.stdout.fileno(), 4096)
            if not b:
                break
            got += b
    if not got.endswith(want):
        ok = False
        break
p.stdin.close()
rest = p.stdout.read()
err = p.stderr.read()
check(ok, "full duplex: each line answered while stdin stays open (got %r)" % got[-60:])
check_eq((p.wait(timeout=30), got + rest), (0, b"".join(b">LINE %d\n" % i for i in range(20))),
         "full duplex: exit 0 and every answer once")
check_summary(err.decode().splitlines()[-1], 20, sum(len(b"line %d\n" % i) for i in range(20)),
              sum(len(b">LINE %d\n" % i) for i in range(20)), "full duplex")

# A large input (about 50 MB), from a file and through a pipe.
big = b"".join(b"%08d,%s,%d\n" % (i, b"feature" * (i % 13), i * 31) for i in range(800000))
big_in = write_file("big.csv", big)
big_out = os.path.join(TMP, "big.out")
want = echo(big)
t0 = time.time()
r = transform(srv, big_in, big_out, timeout=300)
check_eq(r.returncode, 0, "50 MB file: exit 0; stderr %r" % r.stderr[-300:])
got = read_file(big_out)
check_eq((len(got), hashlib.sha256(got).hexdigest()), (len(want), hashlib.sha256(want).hexdigest()),
         "50 MB file: every byte of the output")
check_summary(stderr_lines(r)[-1], big.count(b"\n"), len(big), len(want), "50 MB file")
print("50 MB (%d bytes) through the fake server in %.1f s" % (len(big), time.time() - t0))
r = transform(srv, input=big, timeout=300)
check_eq((r.returncode, hashlib.sha256(r.stdout).hexdigest()), (0, hashlib.sha256(want).hexdigest()),
         "50 MB through stdin and stdout")

# ---- errors -----------------------------------------------------------------

r = transform(srv, inp, out, endpoint="nope")
lines = stderr_lines(r)
check_eq((r.returncode, lines[:1]), (1, ["infergate-cli: 400 ValidationError: Endpoint nope does not exist."]),
         "400: status, error type and message")
check_eq(read_file(out), b"", "400: OUT is empty")
check(len(lines) == 2 and SUMMARY.match(lines[1]) is not None, "400: then the summary: %r" % lines)
r = transform(srv, input=big[:5 << 20], endpoint="nope", timeout=60)
check_eq((r.returncode, stderr_lines(r)[:1]),
         (1, ["infergate-cli: 400 ValidationError: Endpoint nope does not exist."]),
         "400 with 5 MB still to send: the client stops sending and reports")
r = transform(srv, input=b"x\n", endpoint="down")
check_eq((r.returncode, stderr_lines(r)[:1]), (1, ["infergate-cli: 503: upstream ?[31mdown"]),
         "503 without an error type nor JSON: the body's text, control bytes replaced")
r = transform(srv, input=b"x\n", endpoint="endless", timeout=30)
check_eq((r.returncode, stderr_lines(r)[:1]),
         (1, ["infergate-cli: " + ("500 InternalFailure: " + ENDLESS.decode())[:1023]]),
         "an error body that does not end: 64 KiB read, the message capped")
r = transform(srv, input=b"x\n", endpoint="refuse")
check_eq((r.returncode, stderr_lines(r)[:1]),
         (1, ["infergate-cli: the stream was reset by the gateway (REFUSED_STREAM) before a response"]),
         "a reset before any response")
r = transform(srv, input=b"x\n", endpoint="bigheaders")
check_eq((r.returncode, stderr_lines(r)[:1]),
         (1, ["infergate-cli: the gateway's response header block is larger than 64 KiB"]),
         "a response header block over 64 KiB")
r = transform(srv, input=big[:1 << 20], endpoint="early")
check_eq((r.returncode, r.stdout, stderr_lines(r)[:1]),
         (1, b">EARLY\n", ["infergate-cli: the gateway ended the response before the whole "
                           "input was sent, after 1 records"]),
         "a response ended before the request")

# --errors abort: RST_STREAM(INTERNAL_ERROR) after the good predictions.
data = b"a\nb\nboom\nc\n"
r = transform(srv, "--errors", "abort", input=data)
check_eq((r.returncode, r.stdout), (1, b">A\n>B\n"), "reset: the predictions before it are kept")
lines = stderr_lines(r)
check_eq(lines[:1], ["infergate-cli: the stream was reset by the gateway (INTERNAL_ERROR) after 2 records"],
         "reset: the message")
check_summary(lines[1] if len(lines) > 1 else "", 2, len(data), 6, "reset")
head = big[:20 << 20]
head = head[:head.rindex(b"\n") + 1]
reset_in = write_file("reset.csv", head + b"boom\n" + big[:1 << 20])
r = transform(srv, "--errors", "abort", reset_in, out, timeout=120)
nhead = head.count(b"\n")
check_eq(r.returncode, 1, "reset after 20 MB: exit 1")
got = read_file(out)
check_eq((len(got), hashlib.sha256(got).hexdigest()),
         (len(echo(head)), hashlib.sha256(echo(head)).hexdigest()),
         "reset after 20 MB: every prediction before it written to OUT")
check_eq(stderr_lines(r)[:1],
         ["infergate-cli: the stream was reset by the gateway (INTERNAL_ERROR) after %d records" % nhead],
         "reset after 20 MB: the message counts every record")

# The connection closed by the server mid-stream.
r = transform(srv, input=b"a\nb\ndie\nc\n")
check_eq((r.returncode, r.stdout, stderr_lines(r)[:1]),
         (1, b">A\n>B\n", ["infergate-cli: the gateway closed the connection after 2 records"]),
         "the connection closed: the output so far, and the message")

# Nothing listening.
port = free_port()
r = cli("transform", "--url", "http://127.0.0.1:%d" % port, "--endpoint", "demo", input=b"x\n")
check_eq((r.returncode, stderr_lines(r), r.stdout),
         (1, ["infergate-cli: cannot connect to 127.0.0.1:%d: Connection refused" % port], b""),
         "connection refused: the message, no summary")
r = cli("transform", "--url", "http://no-such-host.invalid:80", "--endpoint", "demo", input=b"")
check(r.returncode == 1 and stderr_lines(r)[0].startswith(
    "infergate-cli: cannot resolve no-such-host.invalid: "), "unknown host: %r" % r.stderr)

# IN and OUT that do not open; OUT that stops reading.
r = transform(srv, os.path.join(TMP, "missing.csv"), out)
check_eq((r.returncode, stderr_lines(r)),
         (1, ["infergate-cli: cannot open %s: No such file or directory" % os.path.join(TMP, "missing.csv")]),
         "IN missing")
r = transform(srv, inp, os.path.join(TMP, "no", "dir.out"))
check_eq((r.returncode, stderr_lines(r)),
         (1, ["infergate-cli: cannot open %s: No such file or directory" % os.path.join(TMP, "no", "dir.out")]),
         "OUT in a missing directory")
for redir, args, want_err in (
        (">&-", "", "infergate-cli: stdout is closed"),
        ("<&-", "", "infergate-cli: stdin is closed")):
    r = run(["sh", "-c", "'%s' transform --url %s --endpoint demo %s 2>&1 %s" % (CLI, srv.url, args, redir)])
    check_eq((r.returncode, r.stdout.decode().splitlines()), (1, [want_err]),
             "a closed %s" % ("stdout" if ">" in redir else "stdin"))
r = run(["sh", "-c", "'%s' transform --url %s --endpoint demo '%s' '%s' <&- >&-" % (CLI, srv.url, inp, out)])
check_eq((r.returncode, read_file(out)), (0, echo(rows)),
         "stdin and stdout closed, IN and OUT given: the socket does not take their numbers")
r = transform(srv, TMP, out)
check_eq((r.returncode, stderr_lines(r)), (1, ["infergate-cli: cannot read %s: Is a directory" % TMP]),
         "IN a directory")
p = subprocess.Popen([CLI, "transform", "--url", srv.url, "--endpoint", "demo", big_in],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
p.stdout.read(10)
p.stdout.close()
err = p.stderr.read().decode()
check_eq((p.wait(timeout=60), err.splitlines()[:1]),
         (1, ["infergate-cli: cannot write to stdout: Broken pipe"]), "EPIPE on stdout")

# A slow reader of OUT holds the client (synchronous writes), not its memory.
p = subprocess.Popen([CLI, "transform", "--url", srv.url, "--endpoint", "demo", big_in],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
got, hwm = [], 0
while True:
    b = os.read(p.stdout.fileno(), 65536)
    if not b:
        break
    got.append(b)
    if len(got) % 16 == 0:
        time.sleep(0.02)
        try:
            with open("/proc/%d/status" % p.pid) as f:
                hwm = max([hwm] + [int(l.split()[1]) for l in f if l.startswith("VmHWM:")])
        except OSError:
            pass
got = b"".join(got)
p.stderr.read()
check_eq((p.wait(timeout=60), hashlib.sha256(got).hexdigest()), (0, hashlib.sha256(want).hexdigest()),
         "a slow reader of stdout: every byte")
check(0 < hwm < RSS_CAP_KIB, "a slow reader of stdout: peak RSS %d KiB < %d KiB"
      % (hwm, RSS_CAP_KIB))
srv.close()

# ---- flow control: 200 MB through a slow server, memory stays small ----------

slow = FakeTransform(slow=0.002)
line = b"0123456789abcdef" * 60 + b"\n"  # 961 bytes
n = (200 << 20) // len(line)
huge_in = os.path.join(TMP, "huge.csv")
with open(huge_in, "wb") as f:
    for _ in range(n // 1000):
        f.write(line * 1000)
n = (n // 1000) * 1000
huge_out = os.path.join(TMP, "huge.out")
t0 = time.time()
p = subprocess.Popen([CLI, "transform", "--url", slow.url, "--endpoint", "demo", huge_in, huge_out],
                     stderr=subprocess.PIPE, env=ENV)
hwm, lag, in_fd = 0, 0, None
while p.poll() is None:
    try:
        with open("/proc/%d/status" % p.pid) as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    hwm = max(hwm, int(l.split()[1]))
        if in_fd is None:
            for fd in os.listdir("/proc/%d/fd" % p.pid):
                if os.readlink("/proc/%d/fd/%s" % (p.pid, fd)) == huge_in:
                    in_fd = fd
        with open("/proc/%d/fdinfo/%s" % (p.pid, in_fd)) as f:
            pos = int(f.readline().split()[1])
        with slow.lock:
            lag = max(lag, pos - slow.bytes_in)
    except (OSError, ValueError, IndexError):
        pass
    time.sleep(0.05)
err = p.stderr.read().decode()
elapsed = time.time() - t0
check_eq(p.returncode, 0, "200 MB through a slow server: exit 0; stderr %r" % err[-300:])
check(0 < hwm < RSS_CAP_KIB, "200 MB through a slow server: peak RSS %d KiB < %d KiB"
      % (hwm, RSS_CAP_KIB))
check(lag < 16 << 20, "flow control: IN read at most 16 MiB ahead of the server (%d)" % lag)
check_eq(os.path.getsize(huge_out), n * (len(line) + 1), "200 MB: every byte out")
with open(huge_out, "rb") as f:
    want_line = b">" + line.upper()
    ok = all(chunk == want_line * (len(chunk) // len(want_line))
             for chunk in iter(lambda: f.read(len(want_line) * 1000), b""))
check(ok, "200 MB: every prediction exact")
check_summary(err.splitlines()[-1] if err else "", n, n * len(line), n * (len(line) + 1),
              "200 MB slow")
print("200 MB through the slow server in %.1f s, peak RSS %d KiB, IN ahead by at most %d bytes"
      % (elapsed, hwm, lag))
os.unlink(huge_in)
os.unlink(huge_out)

# SIGTERM mid-stream: the output so far is written, exit 1.
p = subprocess.Popen([CLI, "transform", "--url", slow.url, "--endpoint", "demo", big_in, big_out],
                     stderr=subprocess.PIPE, env=ENV)
time.sleep(0.7)
p.send_signal(signal.SIGTERM)
err = p.stderr.read().decode()
m = re.match(r"^infergate-cli: interrupted \(SIGTERM\) after (\d+) records$", err.splitlines()[0])
check(p.wait(timeout=30) == 1 and m is not None, "SIGTERM: exit 1 and the message: %r" % err)
got = read_file(big_out)
k = int(m.group(1)) if m else -1
check(k > 0 and got.count(b"\n") == k and want.startswith(got),
      "SIGTERM: the %d records announced are in OUT, exact (%d lines)" % (k, got.count(b"\n")))

# A server that grants large windows but reads slowly: the socket's buffer,
# not flow control, holds the client back; its frames wait in at most ~1 MiB.
wide = FakeTransform(slow=0.002, big_window=True)
p = subprocess.Popen([CLI, "transform", "--url", wide.url, "--endpoint", "demo", big_in, big_out],
                     stderr=subprocess.PIPE, env=ENV)
hwm = 0
while p.poll() is None:
    try:
        with open("/proc/%d/status" % p.pid) as f:
            hwm = max([hwm] + [int(l.split()[1]) for l in f if l.startswith("VmHWM:")])
    except OSError:
        pass
    time.sleep(0.05)
p.stderr.read()
check_eq((p.returncode, hashlib.sha256(read_file(big_out)).hexdigest()),
         (0, hashlib.sha256(want).hexdigest()), "wide windows, slow reads: every byte")
check(0 < hwm < RSS_CAP_KIB, "wide windows, slow reads: peak RSS %d KiB < %d KiB"
      % (hwm, RSS_CAP_KIB))
print("wide windows, slow reads: peak RSS %d KiB" % hwm)
wide.close()

# ---- the progress display on a terminal --------------------------------------

mid = write_file("mid.csv", line * 20000)  # 19 MB through the slow server: > 0.5 s
mfd, sfd = pty.openpty()
p = subprocess.Popen([CLI, "transform", "--url", slow.url, "--endpoint", "demo", mid, out],
                     stderr=sfd)
os.close(sfd)
tty = b""
while True:
    try:
        b = os.read(mfd, 4096)
    except OSError:
        break
    if not b:
        break
    tty += b
os.close(mfd)
check_eq(p.wait(timeout=120), 0, "progress: exit 0")
text = tty.decode(errors="replace")
check(re.search(r"\rinfergate-cli: \d+ rows out, \d+ rows/s, [\d.]+ [KMG]iB sent, "
                r"[\d.]+ [KMG]iB received, [\d.]+ s\x1b\[K", text) is not None,
      "progress: a line refreshed with \\r on a terminal: %r" % text[:200])
final = text.rsplit("\r\x1b[K", 1)[-1].strip("\r\n")
check_summary(final, 20000, 20000 * len(line), 20000 * (len(line) + 1), "progress: the summary last")
slow.close()

# ---- TLS ----------------------------------------------------------------------

cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
check_eq(r.returncode, 0, "self-signed certificate")
tsrv = FakeTransform(tls=(cert, key))
r = cli("transform", "--url", tsrv.url, "--endpoint", "demo", "--insecure", inp, out)
check_eq((r.returncode, read_file(out)), (0, echo(rows)), "TLS --insecure: exact output")
check_eq(tsrv.requests[-1][1].get(":scheme"), "https", "TLS: :scheme https")
r = cli("transform", "--url", tsrv.url, "--endpoint", "demo", "--cacert", cert, input=big)
check_eq((r.returncode, hashlib.sha256(r.stdout).hexdigest()), (0, hashlib.sha256(want).hexdigest()),
         "TLS --cacert: 50 MB exact")
r = cli("transform", "--url", tsrv.url, "--endpoint", "demo", input=b"x\n")
check_eq((r.returncode, stderr_lines(r)),
         (1, ["infergate-cli: TLS handshake with 127.0.0.1:%d failed: certificate verify failed: "
              "self-signed certificate" % tsrv.port]), "TLS: an unknown CA refused")
r = cli("transform", "--url", tsrv.url.replace("127.0.0.1", "localhost"), "--endpoint", "demo",
        "--cacert", cert, input=b"x\n")
check_eq((r.returncode, stderr_lines(r)[:1]),
         (1, ["infergate-cli: TLS handshake with localhost:%d failed: certificate verify failed: "
              "hostname mismatch" % tsrv.port]), "TLS: the name must match the certificate")
r = cli("transform", "--url", tsrv.url, "--endpoint", "demo", "--cacert",
        os.path.join(TMP, "missing.pem"), input=b"x\n")
check(r.returncode == 1 and stderr_lines(r)[0].startswith(
    "infergate-cli: cannot load --cacert %s: " % os.path.join(TMP, "missing.pem")),
    "TLS: a missing --cacert: %r" % r.stderr)
r = cli("transform", "--url", "https://127.0.0.1:%d" % FakeTransform().port, "--endpoint", "demo",
        "--insecure", input=b"x\n")
check_eq((r.returncode, stderr_lines(r)[0][:len("infergate-cli: TLS handshake with")]),
         (1, "infergate-cli: TLS handshake with"), "TLS to an h2c server: a handshake failure")
tsrv.close()
h1 = FakeTransform(tls=(cert, key), alpn=("http/1.1",))
r = cli("transform", "--url", h1.url, "--endpoint", "demo", "--insecure", input=b"x\n")
check_eq((r.returncode, stderr_lines(r)),
         (1, ["infergate-cli: 127.0.0.1:%d did not negotiate HTTP/2 over TLS (ALPN h2)" % h1.port]),
         "TLS without ALPN h2")
h1.close()

# ---- the real gateway -----------------------------------------------------------
# Its /transform (src/transform.c): each stream's output compared with the
# unary InvokeEndpoint answer for the same rows.

if not os.path.exists(os.path.join(ROOT, "src", "transform.c")):
    print("the gateway has no /transform (src/transform.c): its cases are left out")
    finish()

model = load_model(DEMO_MODEL)
digits = read_file(DIGITS)
nrows = len(digits_rows())
with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
    for accept in ("text/csv", "application/jsonlines"):
        st, _, unary = curl(gw.invoke_url("demo"), "@" + DIGITS, http2=True,
                            headers=["Content-Type: text/csv", "Accept: " + accept])
        check_eq((st, unary), (200, expected_body(model, digits_rows(), accept)),
                 "gateway: the unary answer (%s)" % accept)
        r = cli("transform", "--url", gw.url, "--endpoint", "demo", "--accept", accept, DIGITS, out)
        check_eq((r.returncode, read_file(out).decode()), (0, unary),
                 "gateway: the stream's output is the unary answer (%s)" % accept)
        check_summary(stderr_lines(r)[-1], nrows, len(digits), len(unary.encode()),
                      "gateway " + accept)
    csv_unary = expected_body(model, digits_rows(), "text/csv").encode()

    # 100 copies through a pipe, CRLF and blank lines on the way.
    crlf = digits.replace(b"\n", b"\r\n\r\n") * 100
    r = cli("transform", "--url", gw.url, "--endpoint", "demo", input=crlf, timeout=300)
    check_eq((r.returncode, len(r.stdout), hashlib.sha256(r.stdout).hexdigest()),
             (0, len(csv_unary) * 100, hashlib.sha256(csv_unary * 100).hexdigest()),
             "gateway: %d rows, CRLF and blank lines, through stdin" % (nrows * 100))
    check_summary(stderr_lines(r)[-1], nrows * 100, len(crlf), len(csv_unary) * 100,
                  "gateway 100 copies")

    # An unknown endpoint: the unary error's status, type and message.
    st, hd, body = curl(gw.url + "/endpoints/nope/invocations", b"1\n", http2=True,
                        headers=["Content-Type: text/csv"])
    r = cli("transform", "--url", gw.url, "--endpoint", "nope", input=b"1\n")
    check_eq((r.returncode, stderr_lines(r)[:1]),
             (1, ["infergate-cli: %d %s: %s" % (st, hd.get("x-amzn-errortype"),
                                               json.loads(body)["message"])]),
             "gateway: an unknown endpoint, as the unary call reports it")

    # A bad row (line 3): inline, an error record in its place; abort, a reset.
    rows3 = digits.split(b"\n")
    bad = rows3[0] + b"\n" + rows3[1] + b"\n1,2,3\n" + rows3[2] + b"\n"
    good = csv_unary.split(b"\n")
    r = cli("transform", "--url", gw.url, "--endpoint", "demo", "--errors", "inline", input=bad)
    check_eq((r.returncode, r.stdout),
             (0, good[0] + b"\n" + good[1] + b"\n" +
              b'error,3,ValidationError,"Row 3: expected 64 features, found 3."\n' + good[2] + b"\n"),
             "gateway: --errors inline, the error record in the bad row's place")
    r = cli("transform", "--url", gw.url, "--endpoint", "demo", "--errors", "abort", input=bad)
    check_eq((r.returncode, r.stdout, stderr_lines(r)[:1]),
             (1, good[0] + b"\n" + good[1] + b"\n",
              ["infergate-cli: the stream was reset by the gateway (INTERNAL_ERROR) after 2 records"]),
             "gateway: --errors abort, the predictions before the bad row, then the reset")

    # Every sh example of docs/cli.md, run with sh against this gateway (the
    # shipped configuration's endpoint demo), its output compared with the
    # text block after it.
    with open(os.path.join(ROOT, "docs", "cli.md")) as f:
        doc = f.read()
    examples = re.findall(r"```sh\n((?:(?!```).)*)```\s*```text\n((?:(?!```).)*)```", doc, re.S)
    check(len(examples) >= 5, "docs/cli.md: its examples found (%d)" % len(examples))
    for script, want_out in examples:
        script = script.replace("http://127.0.0.1:8080", gw.url)
        r = subprocess.run(["sh", "-c", script], cwd=ROOT, capture_output=True, timeout=60)
        r_out = r.stdout.decode()
        check_eq(r_out, want_out, "docs/cli.md example: %s" % script.splitlines()[0][:70])

finish()
