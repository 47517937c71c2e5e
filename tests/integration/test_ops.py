"""Operations from the real binary: --version, -h, infergate_build_info,
/metrics for the largest configuration allowed (1024 endpoints), the JSON
access log, and nothing but JSON lines on stderr (libevent's own messages
included)."""

import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request

from iglib import (BIN, DEMO_MODEL, ROOT, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   finish, h1_exchange, run)

with open(os.path.join(ROOT, "include", "infergate", "version.h")) as f:
    VERSION = re.search(r'#define IG_VERSION "([^"]+)"', f.read()).group(1)


def get(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def json_lines(text, what):
    """Every line of <text> is one JSON object with ts, level and msg."""
    bad = []
    objs = []
    for line in text.splitlines():
        try:
            o = json.loads(line)
            if not (isinstance(o, dict) and "ts" in o and "level" in o and "msg" in o):
                bad.append(line)
            objs.append(o)
        except ValueError:
            bad.append(line)
    check(not bad, "%s: every stderr line is a JSON log object; not: %r" % (what, bad[:3]))
    return objs


# ---- --version, -h ---------------------------------------------------------

r = run([BIN, "--version"])
check_eq(r.returncode, 0, "--version exits 0")
out = r.stdout.decode()
check(re.fullmatch(r"infergate %s \(build [^\s()]+\)\n" % re.escape(VERSION), out) is not None,
      "--version prints 'infergate VERSION (build BUILD)': %r" % out)
check_eq(r.stderr, b"", "--version writes nothing on stderr")
BUILD = re.search(r"\(build ([^\s()]+)\)", out).group(1) if "(build " in out else "?"

r = run([BIN, "-h"])
h = run([BIN, "--help"])
check_eq(r.returncode, 0, "-h exits 0")
check(r.stdout == h.stdout and b"--max_body_bytes" in r.stdout, "-h prints what --help prints")
check(b"--version" in h.stdout and b"-h" in h.stdout, "--help lists --version and -h")
# --version and -h win over a file that does not exist, like --help
r = run([BIN, "--config", "/nonexistent.conf", "--version"])
check_eq(r.returncode, 0, "--version does not read the file")
r = run([BIN, "-x"])
objs = json_lines(r.stderr.decode(), "refused flag")
check_eq((r.returncode, [(o["level"], o["msg"]) for o in objs]),
         (2, [("error", "command line: '-x': unexpected argument (use --NAME VALUE or "
                        "--NAME=VALUE)")]),
         "another short flag is refused with exit 2, as a JSON log line")

# ---- /metrics for the largest configuration allowed ------------------------

N = 1024
eps = {"e%04d" % i: {"model": DEMO_MODEL, "max_delay_us": "0"} for i in range(N)}
t0 = time.time()
with Gateway(eps) as gw:
    started = time.time() - t0
    rows = digits_rows(3)
    st, _, body = curl(gw.invoke_url("e1023"), csv_body(rows), ["Content-Type: text/csv"])
    check_eq(st, 200, "invoke the last of 1024 endpoints")
    st, _, _ = curl(gw.invoke_url("e0000"), csv_body(rows[:1]), ["Content-Type: text/csv"])
    check_eq(st, 200, "invoke the first of 1024 endpoints")
    t1 = time.time()
    st, ctype, text = get(gw.url + "/metrics")
    took = time.time() - t1
    check_eq(st, 200, "/metrics answers with 1024 endpoints")
    check_eq(ctype, "text/plain; version=0.0.4", "/metrics content type")
    lines = set(text.splitlines())
    for want in ['infergate_requests_total{endpoint="e1023"} 1',
                 'infergate_rows_total{endpoint="e1023"} 3',
                 'infergate_requests_total{endpoint="e0000"} 1',
                 'infergate_rows_total{endpoint="e0000"} 1',
                 'infergate_requests_total{endpoint="e0511"} 0',
                 'infergate_batch_rows_bucket{endpoint="e1023",le="2.0"} 0',
                 'infergate_batch_rows_bucket{endpoint="e1023",le="4.0"} 1',
                 'infergate_batch_rows_bucket{endpoint="e1023",le="+Inf"} 1',
                 'infergate_batch_rows_count{endpoint="e1023"} 1',
                 'infergate_batch_rows_sum{endpoint="e1023"} 3.0',
                 'infergate_batch_rows_count{endpoint="e0512"} 0',
                 'infergate_request_latency_seconds_count{endpoint="e1023"} 1',
                 'infergate_request_latency_seconds_bucket{endpoint="e0700",le="60.0"} 0',
                 'infergate_upstream_latency_seconds_count{endpoint="e0000"} 1',
                 'infergate_queue_rows{endpoint="e0999"} 0',
                 'infergate_inflight_batches{endpoint="e0999"} 0',
                 'infergate_batches_total{endpoint="e0998",reason="drain"} 0',
                 'infergate_build_info{version="%s",build="%s"} 1' % (VERSION, BUILD)]:
        check(want in lines, "/metrics has the line %s" % want)
    names = set(re.findall(r'infergate_requests_total\{endpoint="(e\d{4})"\} ', text))
    check_eq(len(names), N, "one requests_total sample per endpoint")
    check_eq(text.count("\n# TYPE infergate_batch_rows histogram\n"), 1,
             "each metric family has one TYPE line")
    check(text.endswith("\n"), "metrics text ends with a newline")
    print("info: 1024 endpoints: started in %.2f s, /metrics %d bytes in %.1f ms"
          % (started, len(text), took * 1000))
    check(gw.alive(), "gateway alive after /metrics")
    json_lines(gw.stderr(), "1024 endpoints")

# ---- libevent's own messages are JSON lines too -----------------------------

# EVENT_SHOW_METHOD makes libevent print which backend it uses through its
# log hook: that line must come out as one of ours.
os.environ["EVENT_SHOW_METHOD"] = "1"
os.environ["INFERGATE_LOG_LEVEL"] = "info"  # the environment beats Gateway's log_level = warn
try:
    with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
        time.sleep(0.2)
        objs = json_lines(gw.stderr(), "libevent message")
        check(any(o["msg"].startswith("libevent: libevent using: ") and o["level"] == "info"
                  for o in objs), "libevent's message is a JSON line: %r" % objs[:3])
        check(any(o["msg"] == "infergate %s (build %s) starting" % (VERSION, BUILD)
                  for o in objs), "the first log line names the version and build")
finally:
    del os.environ["EVENT_SHOW_METHOD"]
    del os.environ["INFERGATE_LOG_LEVEL"]

# ---- access log --------------------------------------------------------------

with Gateway({"demo": {"model": DEMO_MODEL}}, access_log="on") as gw:
    rows = digits_rows(2)
    body = csv_body(rows)
    st, hd, out = curl(gw.invoke_url("demo"), body, ["Content-Type: text/csv"], http2=True)
    check_eq(st, 200, "access log: a request")
    rid = hd.get("x-amzn-requestid")
    st2, hd2, _ = curl(gw.invoke_url("nope\"x"), "1\n", ["Content-Type: text/csv"])
    check_eq(st2, 400, "access log: an unknown endpoint")
    time.sleep(0.3)
    objs = json_lines(gw.stderr(), "access log on")
    acc = [o for o in objs if o.get("msg") == "access"]
    ok = [o for o in acc if o.get("request_id") == rid]
    check_eq(len(ok), 1, "one access line for the request (id %s); lines: %r" % (rid, acc[:4]))
    if ok:
        o = ok[0]
        check_eq((o["level"], o["endpoint"], o["proto"], o["status"], o["error_type"], o["rows"],
                  o["bytes_in"], o["bytes_out"]),
                 ("info", "demo", "HTTP/2", 200, None, 2, len(body), len(out.encode())),
                 "access line fields")
        check(all(isinstance(o[k], int) for k in ("batch_first", "batch_last", "queue_us",
                                                   "upstream_us", "total_us")),
              "access line numbers: %r" % o)
        check(list(o) == ["ts", "level", "msg", "request_id", "endpoint", "proto", "status",
                          "error_type", "rows", "bytes_in", "bytes_out", "batch_first",
                          "batch_last", "queue_us", "upstream_us", "total_us"],
              "access line keys in order: %r" % list(o))
    bad = [o for o in acc if o.get("request_id") == hd2.get("x-amzn-requestid")]
    check(len(bad) == 1 and bad[0]["level"] == "warn" and bad[0]["status"] == 400 and
          bad[0]["error_type"] == "ValidationError" and bad[0]["endpoint"] == 'nope"x',
          "error access line at warn: %r" % bad)

# Requests the HTTP layer refuses by itself (the gateway never sees them) get
# their line at warn too: a declared body over max_body_bytes, a header
# block over max_header_list_size.
with Gateway({"demo": {"model": DEMO_MODEL}}, max_header_list_size="1024") as gw:
    big = os.path.join(tempfile.mkdtemp(prefix="ig-ops-"), "big.csv")
    with open(big, "wb") as f:
        f.write(b"1," * (3 << 20) + b"1\n")  # 6 MiB + 1 byte
    st, hd, _ = curl(gw.invoke_url("demo"), "@" + big, ["Content-Type: text/csv"])
    st2, hd2, _ = curl(gw.invoke_url("demo"), "1\n", ["X-Big: " + "x" * 2000], http2=True)
    check_eq((st, st2), (413, 431), "refused by the HTTP layer: 413, 431")
    time.sleep(0.3)
    acc = {o["request_id"]: o for o in json_lines(gw.stderr(), "http refusals")
           if o.get("msg") == "access"}
    o = acc.get(hd.get("x-amzn-requestid"), {})
    check_eq((o.get("level"), o.get("endpoint"), o.get("proto"), o.get("status"),
              o.get("error_type")), ("warn", "demo", "HTTP/1.1", 413, "ValidationError"),
             "a 413 gets an access line at warn: %r" % o)
    o = acc.get(hd2.get("x-amzn-requestid"), {})
    check_eq((o.get("level"), o.get("proto"), o.get("status"), o.get("error_type")),
             ("warn", "HTTP/2", 431, "ValidationError"),
             "a 431 gets an access line at warn: %r" % o)

# The HTTP/1.1 answers the module sends on its own: a malformed request
# (400) and headers that never finish (408) get their warn line too.
with Gateway({"demo": {"model": DEMO_MODEL}}, header_timeout_ms="300") as gw:
    r400 = h1_exchange(gw.port, b"GET /ping HTTP/1.1\r\nHost x\r\n\r\n")
    r408 = h1_exchange(gw.port, b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n")
    check(r400.startswith(b"HTTP/1.1 400 ") and r408.startswith(b"HTTP/1.1 408 "),
          "a malformed request gets 400, unfinished headers 408: %r %r" % (r400[:20], r408[:20]))
    time.sleep(0.3)
    acc = [o for o in json_lines(gw.stderr(), "h1 refusals") if o.get("msg") == "access"]
    got = sorted((o["status"], o["level"], o["error_type"], o["proto"]) for o in acc)
    check_eq(got, [(400, "warn", "ValidationError", "HTTP/1.1"),
                   (408, "warn", "ValidationError", "HTTP/1.1")],
             "the module's own 400 and 408 get access lines at warn")

with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
    st, hd, _ = curl(gw.invoke_url("demo"), csv_body(digits_rows(1)), ["Content-Type: text/csv"])
    st2, hd2, _ = curl(gw.invoke_url("demo"), "1,2\n", ["Content-Type: text/csv"])
    check_eq((st, st2), (200, 400), "access log off: a good and a bad request")
    time.sleep(0.3)
    acc = [o for o in json_lines(gw.stderr(), "access log off") if o.get("msg") == "access"]
    check_eq([o["request_id"] for o in acc], [hd2.get("x-amzn-requestid")],
             "access_log off: only the error gets a line (at warn)")

finish()
