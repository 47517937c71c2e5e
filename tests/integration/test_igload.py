"""bin/igload, the load generator of issue 19 (load/igload/README.md), against
the real gateway (an embedded K-Means model, load/models/bench-kmeans-10.json)
and against small servers of this file: exact counts in closed loop, answers
checked against the model (and wrong_answer against another model), open
loop at a rate, errors by type (http_<status>, reset, goaway, bad_response,
timeout / lost from a server that never answers, closed from one that sends
garbage), stream mode through /transform/NAME, SigV4 against the gateway
with data_auth on (right and wrong secret), the JSON report's keys, usage
errors (exit 2) and a refused connect (exit 1)."""

import json
import os
import random
import subprocess
import tempfile
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from iglib import (ADMIN_KEY, ADMIN_SECRET, ROOT, AdminGateway, Gateway, LoopbackServer, check,
                   check_eq, finish, free_port)

IGLOAD = os.path.join(ROOT, os.path.dirname(os.environ.get("INFERGATE_BIN", "bin/infergate"))
                      or "bin", "igload")
if not os.path.exists(IGLOAD):
    IGLOAD = os.path.join(ROOT, "bin", "igload")
MODEL = os.path.join(ROOT, "load", "models", "bench-kmeans-10.json")
TMP = tempfile.mkdtemp(prefix="ig-igload-")
KEYS = {"tool", "url", "mode", "connections", "streams", "rate", "duration_s", "rows_per_request",
        "requests", "rows_ok", "requests_per_s", "rows_per_s", "errors", "latency_ms", "bytes"}


def log(msg):
    print("test_igload: " + msg, flush=True)


def igload(*args, timeout=60, env=None):
    """Run igload with --json -; -> (exit status, parsed JSON or None, stderr)."""
    p = subprocess.run([IGLOAD, "--json", "-"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout, env=env)
    try:
        js = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        js = None
        print("igload stdout is not JSON: %r" % p.stdout[:500])
    return p.returncode, js, p.stderr


def summary(js):
    if not js:
        return "no JSON"
    return "requests %s errors %s rows_ok %s" % (js["requests"], js["errors"], js["rows_ok"])


# ---- small servers -----------------------------------------------------------

class H2Server(LoopbackServer):
    """python3-h2 on a free loopback port; by path: /reset resets every
    stream (INTERNAL_ERROR), /goaway sends GOAWAY(last stream 0) and closes,
    /headers answers 200 with 300 header fields, anything else 200 with
    '1.0,2.0' per row of the request body."""

    def __init__(self):
        self.headers = []
        LoopbackServer.__init__(self)
        self.url = "http://127.0.0.1:%d" % self.port

    def _serve(self, sock):
        try:
            self._h2(sock)
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            sock.close()

    def _h2(self, sock):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        paths, bodies = {}, {}
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    hd = dict(ev.headers)
                    self.headers.append(hd)
                    paths[ev.stream_id] = hd.get(":path", "")
                    bodies[ev.stream_id] = b""
                    if paths[ev.stream_id] == "/goaway":
                        conn.close_connection(last_stream_id=0)
                        sock.sendall(conn.data_to_send())
                        time.sleep(0.05)
                        return
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                elif isinstance(ev, h2.events.StreamEnded):
                    sid, path = ev.stream_id, paths.get(ev.stream_id, "")
                    if path == "/reset":
                        conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
                    elif path == "/headers":
                        conn.send_headers(sid, [(":status", "200")] +
                                          [("x-h-%d" % i, "v") for i in range(300)],
                                          end_stream=True)
                    else:
                        rows = bodies.get(sid, b"").count(b"\n")
                        conn.send_headers(sid, [(":status", "200")])
                        conn.send_data(sid, b"1.0,2.0\n" * rows, end_stream=True)
            sock.sendall(conn.data_to_send())


class RawServer(LoopbackServer):
    """Accepts and reads; <mode> 'silent' never writes a byte, 'garbage'
    answers every read with random bytes."""

    def __init__(self, mode):
        self.mode = mode
        LoopbackServer.__init__(self)
        self.url = "http://127.0.0.1:%d/x" % self.port

    def _serve(self, s):
        rnd = random.Random(len(self.conns))
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                if self.mode == "garbage":
                    s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))))
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for s in self.conns:
            try:
                s.close()
            except OSError:
                pass


# ---- the gateway -------------------------------------------------------------

other = os.path.join(TMP, "other-kmeans.json")
with open(MODEL) as f:
    m = json.load(f)
m["centroids"] = [[v + 0.5 for v in c] for c in m["centroids"]]
with open(other, "w") as f:
    json.dump(m, f)

with Gateway({"km": {"model": MODEL}}) as gw:
    inv = gw.invoke_url("km")

    log("closed loop, -n 500, checked against the model")
    rc, js, err = igload("-n", 500, "-c", 2, "-m", 8, "--model", MODEL, inv)
    check_eq(rc, 0, "closed loop: exit status; stderr: " + err[-500:])
    check(js is not None and KEYS <= set(js), "JSON has every key: %r" % (sorted(js) if js else js))
    if js:
        check_eq((js["requests"]["sent"], js["requests"]["ok"], js["requests"]["failed"],
                  js["requests"]["lost"], js["errors"], js["rows_ok"]),
                 (500, 500, 0, 0, {}, 500), "closed loop -n 500: counts")
        check_eq((js["tool"], js["mode"], js["connections"], js["streams"], js["rate"],
                  js["rows_per_request"], js["url"]),
                 ("igload", "unary", 2, 8, None, 1, inv), "JSON: the run's parameters")
        lat = js["latency_ms"]
        check(set(lat) >= {"p50", "p90", "p99", "p99_9", "max", "mean"} and
              0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"] * 1.01,
              "latency percentiles ordered: %r" % lat)
        check(js["duration_s"] > 0 and js["requests_per_s"] > 0 and js["bytes"]["sent"] > 0 and
              js["bytes"]["received"] > 0, "duration, rate and bytes: %r" % js)
    check("500 ok" in err and "p99.9" in err,
          "the human summary goes to stderr with --json -: %r" % err[-400:])

    log("several rows a request, JSON bodies, checked")
    rc, js, err = igload("-n", 100, "-m", 4, "--rows", 7, "--content-type", "application/json",
                         "--accept", "application/jsonlines", "--model", MODEL, inv)
    check(rc == 0 and js and js["requests"]["ok"] == 100 and js["rows_ok"] == 700 and
          not js["errors"], "7 rows a request, application/json: %s" % summary(js))

    log("--input rows, cycled")
    rows = os.path.join(TMP, "rows.csv")
    with open(rows, "w") as f:
        f.write("1,2,3,4,5,6,7,8,9,10\n\n-1,-2,-3,-4,-5,-6,-7,-8,-9,-10\r\n0.5,0,0,0,0,0,0,0,0,1\n")
    rc, js, err = igload("-n", 60, "--rows", 2, "--input", rows, "--model", MODEL, inv)
    check(rc == 0 and js and js["requests"]["ok"] == 60 and js["rows_ok"] == 120 and
          not js["errors"], "--input, 2 rows a request: %s" % summary(js))

    log("wrong answers against another model")
    rc, js, err = igload("-n", 200, "-c", 2, "-m", 4, "--model", other, inv)
    check(rc == 0 and js and js["requests"]["ok"] == 0 and js["requests"]["failed"] == 200 and
          js["errors"] == {"wrong_answer": 200}, "another model: wrong_answer: %s" % summary(js))
    rc, js, err = igload("-n", 20, "--model", other, "--fail-on-error", "--quiet", inv)
    check_eq(rc, 1, "--fail-on-error with errors: exit 1")
    check_eq(err, "", "--quiet: no summary")

    log("open loop at 200 req/s for 2 s")
    rc, js, err = igload("-r", 200, "-d", 2, "-c", 2, "-m", 8, "--model", MODEL, inv)
    if check(rc == 0 and js is not None, "open loop ran: " + err[-300:]):
        sent = js["requests"]["sent"]
        check(360 <= sent <= 440 and js["requests"]["ok"] == sent and js["rate"] == 200,
              "open loop: ~400 requests, all ok: %s" % summary(js))
        check(1.9 <= js["duration_s"] <= 2.2, "open loop: duration %r" % js["duration_s"])

    log("warmup not counted")
    rc, js, err = igload("-w", 0.5, "-d", 1, "-r", 100, "--model", MODEL, inv)
    check(rc == 0 and js and 85 <= js["requests"]["sent"] <= 115 and
          js["requests"]["ok"] == js["requests"]["sent"],
          "-w 0.5 -d 1 -r 100: ~100 measured: %s" % summary(js))

    log("a non-2xx answer, counted by status")
    rc, js, err = igload("-n", 50, "-m", 4, "--model", MODEL, gw.invoke_url("nope"))
    if check(rc == 0 and js is not None and len(js["errors"]) == 1, "unknown endpoint: %s" % summary(js)):
        k, v = next(iter(js["errors"].items()))
        check(k.startswith("http_4") and v == 50 and js["requests"]["failed"] == 50,
              "unknown endpoint: 50 x %s" % k)

    log("stream mode through /transform/km")
    rc, js, err = igload("--mode", "stream", "--rows", 20000, "-c", 2, "--model", MODEL,
                         gw.url + "/transform/km")
    check(rc == 0 and js and js["mode"] == "stream" and js["requests"]["ok"] == 2 and
          js["rows_ok"] == 40000 and not js["errors"] and js["rows_per_s"] > 0,
          "stream mode: 2 streams x 20000 rows: %s" % summary(js))
    rc, js, err = igload("--mode", "stream", "--rows", 3000, "-c", 1, "-m", 2, "--model", other,
                         gw.url + "/transform/km")
    check(rc == 0 and js and js["errors"].get("wrong_answer") == 2 and js["rows_ok"] == 0,
          "stream mode, another model: wrong_answer: %s" % summary(js))
    rc, js, err = igload("--mode", "stream", "--rows", 500, "-d", 1, "--model", MODEL,
                         "--content-type", "application/jsonlines", gw.url + "/transform/km")
    check(rc == 0 and js and js["requests"]["ok"] >= 2 and
          js["rows_ok"] == 500 * js["requests"]["ok"] and not js["errors"],
          "stream mode with -d: streams repeat: %s" % summary(js))

log("SigV4: the gateway with data_auth on verifies every request")
with AdminGateway({"km": {"model": MODEL}}, data_auth="on") as g:
    for secret, want in ((ADMIN_SECRET, "ok"), ("WRONG", "http_403")):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ADMIN_KEY, AWS_SECRET_ACCESS_KEY=secret)
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        rc, js, err = igload("-n", 40, "-m", 4, "--sigv4", "us-east-1", "--model", MODEL,
                             g.invoke_url("km"), env=env)
        if want == "ok":
            check(rc == 0 and js and js["requests"]["ok"] == 40 and not js["errors"],
                  "--sigv4, right secret: %s %s" % (summary(js), err[-300:]))
        else:
            check(rc == 0 and js and js["requests"]["ok"] == 0 and
                  sum(js["errors"].values()) == 40 and
                  all(k.startswith("http_4") for k in js["errors"]),
                  "--sigv4, wrong secret: refused: %s" % summary(js))
    rc, js, err = igload("-n", 5, "--model", MODEL, g.invoke_url("km"))
    check(js and js["requests"]["ok"] == 0, "unsigned with data_auth on: refused: %s" % summary(js))

log("TLS (ALPN h2): verified with --cacert, refused without, --insecure")
cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], capture_output=True, timeout=60)
check_eq(r.returncode, 0, "self-signed certificate")
with Gateway({"km": {"model": MODEL}}, tls_cert=cert, tls_key=key, ping_scheme="https") as g:
    rc, js, err = igload("-n", 100, "-c", 2, "-m", 4, "--cacert", cert, "--model", MODEL,
                         g.invoke_url("km"))
    check(rc == 0 and js and js["requests"]["ok"] == 100 and not js["errors"],
          "https with --cacert: %s %s" % (summary(js), err[-300:]))
    rc, js, err = igload("-n", 10, "--model", MODEL, g.invoke_url("km"))
    check(rc == 1 and js is None and "certificate" in err,
          "https, an unknown CA: exit 1: %d %r" % (rc, err[-300:]))
    rc, js, err = igload("-n", 10, "--insecure", "--model", MODEL, g.invoke_url("km"))
    check(rc == 0 and js and js["requests"]["ok"] == 10, "https --insecure: %s" % summary(js))

log("errors from a small HTTP/2 server: reset, goaway, bad_response")
srv = H2Server()
rows1 = os.path.join(TMP, "one.csv")
with open(rows1, "w") as f:
    f.write("1,2\n")
rc, js, err = igload("-n", 30, "-m", 3, "--input", rows1, srv.url + "/ok")
check(rc == 0 and js and js["requests"]["ok"] == 30, "the small server answers: %s" % summary(js))
check(any(h.get("user-agent", "").startswith("igload/") and h.get("content-type") == "text/csv"
          and h.get(":method") == "POST" for h in srv.headers), "request headers: %r" % srv.headers[:1])
rc, js, err = igload("-n", 30, "-m", 3, "--input", rows1, "-H", "X-Test: yes", srv.url + "/reset")
check(rc == 0 and js and js["errors"] == {"reset": 30}, "RST_STREAM: reset: %s" % summary(js))
check(any(h.get("x-test") == "yes" for h in srv.headers), "-H header sent")
rc, js, err = igload("-d", 1, "-m", 2, "--input", rows1, srv.url + "/goaway")
check(rc == 0 and js and js["errors"].get("goaway", 0) > 0 and js["requests"]["ok"] == 0,
      "GOAWAY: goaway, reconnects: %s" % summary(js))
rc, js, err = igload("-n", 10, "--input", rows1, srv.url + "/headers")
check(rc == 0 and js and js["errors"] == {"bad_response": 10},
      "300 header fields: bad_response: %s" % summary(js))
srv.close()

log("a server that accepts and never answers: timeout / lost, no hang")
silent = RawServer("silent")
t0 = time.time()
rc, js, err = igload("-d", 1, "-c", 2, "-m", 4, "--timeout", 0.5, "--input", rows1, silent.url,
                     timeout=30)
took = time.time() - t0
check(rc == 0 and js and js["requests"]["ok"] == 0 and
      js["errors"].get("timeout", 0) + js["errors"].get("lost", 0) >= 8 and
      js["requests"]["sent"] == js["requests"]["failed"] + js["requests"]["lost"],
      "silent server: timeout/lost: %s" % summary(js))
check(took < 10, "silent server: igload ended in %.1f s" % took)
rc, js, err = igload("-n", 4, "--timeout", 0.3, "--input", rows1, silent.url, timeout=30)
check(rc == 0 and js and js["errors"] == {"timeout": 4}, "silent server, -n 4: %s" % summary(js))
silent.close()

log("a server that answers garbage: no crash")
garbage = RawServer("garbage")
rc, js, err = igload("-d", 1, "-c", 2, "-m", 2, "--timeout", 0.5, "--input", rows1, garbage.url,
                     timeout=30)
check(rc == 0 and js and js["requests"]["ok"] == 0, "garbage: ran, nothing ok: rc %d %s %s"
      % (rc, summary(js), err[-300:]))
garbage.close()

log("usage errors: exit 2, one line")
for args in (["-c", "0", "--model", MODEL, "http://127.0.0.1:1/"],
             ["--model", MODEL],
             ["--model", MODEL, "ftp://x/"],
             ["--model", MODEL, "--mode", "batch", "http://127.0.0.1:1/"],
             ["http://127.0.0.1:1/"],
             ["--bogus", "http://127.0.0.1:1/"],
             ["--model", MODEL, "-r", "abc", "http://127.0.0.1:1/"],
             ["--model", MODEL, "-H", "no colon", "http://127.0.0.1:1/"],
             ["--model", MODEL, "--content-type", "image/png", "http://127.0.0.1:1/"],
             ["--model", MODEL, "--rows"]):
    p = subprocess.run([IGLOAD] + args, capture_output=True, text=True, timeout=10)
    check(p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("igload: "),
          "usage %r: exit 2 and one line: %d %r" % (args, p.returncode, p.stderr))

log("could not run: exit 1")
port = free_port()
p = subprocess.run([IGLOAD, "--model", MODEL, "http://127.0.0.1:%d/x" % port],
                   capture_output=True, text=True, timeout=20)
check(p.returncode == 1 and "cannot connect" in p.stderr, "refused connect: %d %r"
      % (p.returncode, p.stderr))
p = subprocess.run([IGLOAD, "--model", os.path.join(TMP, "missing.json"), "http://127.0.0.1:1/x"],
                   capture_output=True, text=True, timeout=20)
check(p.returncode == 1 and "--model" in p.stderr, "missing model: %d %r" % (p.returncode, p.stderr))

finish()
