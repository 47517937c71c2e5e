#!/usr/bin/python3
"""load/bench/bench.py - issue 19's benchmark scenarios (make bench).

    /usr/bin/python3 load/bench/bench.py [--quick] [--scenarios S1,S2,...] [--out DIR]

Runs S1-S6 (load/README.md, "make bench"), every system side by side, on
loopback: infergate (bin/infergate), the model container alone ("direct",
bin/fake-container), nginx as an h2c reverse proxy (load/peers/nginx.conf.in),
the Node.js HTTP/2 + DataLoader gateway (load/peers/node-dataloader) and
nghttpd serving a static file. The load comes from bin/igload (h2load and
infergate-cli stand in when it is missing, said in the output). Writes
DIR/<scenario>.json, DIR/REPORT.md and the gnuplot plots (SVG), prints the
issue's targets and whether each is met.

Exit status: 0 when every scenario ran (or was skipped for a stated
reason) and its results parse; a missed target is reported, not an error.
1 on a broken run: a system that did not start or died, a load run whose
results do not parse. 2 on bad usage. Everything started is stopped on exit.
--quick: every scenario briefly (under 3 minutes in all); its figures are
not judged (targets are printed as "not judged").
"""
import argparse
import datetime
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "load/models/bench-kmeans-10.json")
ROW = "1.5,-2.25,3,0.125,-4,5.5,-6,7.75,-8,9\n"
ANSWER = "0.0,17.55702762428766\n"
IGLOAD = os.path.join(ROOT, "bin/igload")
GW = os.path.join(ROOT, "bin/infergate")
FC = os.path.join(ROOT, "bin/fake-container")
CLI = os.path.join(ROOT, "bin/infergate-cli")
NODE_DIR = os.path.join(ROOT, "load/peers/node-dataloader")
NGINX_IN = os.path.join(ROOT, "load/peers/nginx.conf.in")
FC_SERVICE = ["--latency-us", "2000", "--per-row-us", "5", "--max-concurrent", "4"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
POD = "infergate-sidecar"


class Broken(Exception):
    """A broken run: a system that did not start, results that do not parse."""


class Skipped(Exception):
    """A scenario that cannot run here, with the reason."""


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path, timeout=5.0):
    """GET over HTTP/1.1; (status, body) or (0, error text)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode(errors="replace")
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e)


def h2_post(url, body_file, timeout=10):
    """One POST over h2c (curl): (status, body)."""
    r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-m", str(timeout), "-o", "-",
                        "-w", "#IGCODE#%{http_code}", "-H", "content-type: text/csv", "-H", "accept: text/csv",
                        "--data-binary", "@" + body_file, url], capture_output=True, text=True)
    body, _, code = r.stdout.rpartition("#IGCODE#")
    return int(code or 0), body


def proc_tree(pid):
    """pid and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_s(pids):
    """utime + stime of these processes (all threads), seconds."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def metrics(port):
    """The gateway's /metrics as {'name{labels}': value}."""
    code, body = http_get(port, "/metrics")
    if code != 200:
        raise Broken("GET /metrics answered %d: %s" % (code, body[:200]))
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def mdelta(m0, m1, prefix):
    """Sum of the differences of the metrics starting with prefix."""
    return sum(v - m0.get(k, 0.0) for k, v in m1.items() if k.startswith(prefix))


def hist_delta(m0, m1, name):
    """A histogram's buckets over an interval: [(le, count in that bucket)]."""
    cum = []
    for k, v in m1.items():
        mm = re.match(re.escape(name) + r'_bucket\{.*le="([^"]+)"\}$', k)
        if mm:
            le = float("inf") if mm.group(1) == "+Inf" else float(mm.group(1))
            cum.append((le, v - m0.get(k, 0.0)))
    agg = {}
    for le, v in cum:  # summed over endpoints
        agg[le] = agg.get(le, 0.0) + v
    out, prev = [], 0.0
    for le in sorted(agg):
        out.append((le, agg[le] - prev))
        prev = agg[le]
    return out


class Proc:
    def __init__(self, name, argv, tmp, env=None, cwd=None, port_line=False, stdin=None):
        self.name = name
        self.out = os.path.join(tmp, name + ".out")
        self.argv = argv
        with open(self.out, "w") as f:
            self.p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      stdin=stdin if stdin is not None else subprocess.DEVNULL)
        self.pid = self.p.pid
        self.port = None
        if port_line:
            self.wait_line()

    def text(self):
        try:
            with open(self.out) as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.p.poll() is None

    def check(self):
        if not self.alive():
            raise Broken("%s died (exit %s): %s" % (self.name, self.p.returncode, self.text()[-400:]))

    def wait_line(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", self.text(), re.M)
            if m:
                self.port = int(m.group(1))
                return
            self.check()
            time.sleep(0.05)
        raise Broken("%s printed no 'listening on' line within %d s" % (self.name, timeout))

    def wait_tcp(self, port, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            self.check()
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                self.port = port
                return
            except OSError:
                time.sleep(0.05)
        raise Broken("%s does not accept connections on port %d within %d s" % (self.name, port, timeout))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def snapshot(src, dst_dir):
    """A copy of a binary of bin/ in dst_dir: others may relink bin/ in this
    checkout while the scenarios run (make all elsewhere)."""
    dst = os.path.join(dst_dir, os.path.basename(src))
    for _ in range(60):
        try:
            with open(src, "rb") as f:
                data = f.read()
            if data[:4] == b"\x7fELF" and os.path.getsize(src) == len(data):
                with open(dst, "wb") as f:
                    f.write(data)
                os.chmod(dst, 0o755)
                return dst
        except OSError:
            pass
        time.sleep(1)
    raise Broken("cannot copy %s (being rebuilt?)" % src)


class Bench:
    def __init__(self, args):
        global GW, FC, CLI, IGLOAD
        self.args = args
        self.quick = args.quick
        self.tmp = tempfile.mkdtemp(prefix="ig-bench.")
        os.chmod(self.tmp, 0o755)
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        GW, FC = snapshot(GW, bindir), snapshot(FC, bindir)
        if os.access(CLI, os.X_OK):
            CLI = snapshot(CLI, bindir)
        if os.access(IGLOAD, os.X_OK):
            IGLOAD = snapshot(IGLOAD, bindir)
        self.procs = []
        self.igload = os.access(IGLOAD, os.X_OK)
        self.tool = "igload" if self.igload else "h2load (bin/igload missing)"
        self.row_file = os.path.join(self.tmp, "row.csv")
        with open(self.row_file, "w") as f:
            f.write(ROW)
        self.results = {}
        self.broken = []

    # ---- processes -------------------------------------------------------

    def start(self, *a, **kw):
        p = Proc(*a, tmp=self.tmp, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []

    def container(self, name="fake-container", extra=()):
        return self.start(name, [FC, "--model", MODEL, "--port", "0"] + FC_SERVICE + list(extra),
                          port_line=True)

    def infergate(self, name, endpoints, extra_globals=""):
        port = free_port()
        conf = os.path.join(self.tmp, name + ".conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:%d\nlog_level = warn\n%s\n" % (port, extra_globals))
            for ep, opts in endpoints.items():
                f.write("[endpoint %s]\n" % ep)
                for k, v in opts.items():
                    f.write("%s = %s\n" % (k, v))
        p = self.start(name, [GW, "--config", conf])
        end = time.time() + 15
        while time.time() < end:
            p.check()
            if http_get(port, "/readyz")[0] == 200:
                p.port = port
                return p
            time.sleep(0.05)
        raise Broken("%s not ready (GET /readyz) within 15 s: %s" % (name, p.text()[-400:]))

    def nginx(self, upstream_port):
        port = free_port()
        prefix = os.path.join(self.tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        with open(NGINX_IN) as f:
            conf = f.read()
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
        conf = (conf.replace("@PREFIX@", prefix).replace("@PORT@", str(port))
                .replace("@UPSTREAM_PORT@", str(upstream_port)).replace("@USER@", user))
        path = os.path.join(prefix, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise Broken("nginx not found: make bench-deps installs it")
        p = self.start("nginx", [nginx, "-p", prefix, "-c", path, "-e", os.path.join(prefix, "error.log")])
        p.wait_tcp(port)
        return p

    def node(self, upstream_port):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "dataloader")):
            raise Broken("load/peers/node-dataloader/node_modules missing: make bench-deps runs npm ci")
        return self.start("node-dataloader", ["node", os.path.join(NODE_DIR, "server.js"), "--port", "0",
                                               "--upstream", "http://127.0.0.1:%d" % upstream_port],
                          port_line=True)

    def nghttpd(self, answer):
        port = free_port()
        docs = os.path.join(self.tmp, "htdocs")
        os.makedirs(docs, exist_ok=True)
        with open(os.path.join(docs, "invocations"), "w") as f:
            f.write(answer)
        p = self.start("nghttpd", ["nghttpd", "--no-tls", "-d", docs, str(port)])
        p.wait_tcp(port)
        return p

    def probe(self, name, url, want=ANSWER, row_file=None):
        code, body = h2_post(url, row_file or self.row_file)
        if code != 200 or body != want:
            raise Broken("%s: the probe row got %d %r, expected 200 %r" % (name, code, body[:200], want))

    # ---- load ------------------------------------------------------------

    def load(self, label, url, *, rate=None, conns=16, streams=64, duration=10.0, warmup=1.0,
             mode="unary", rows=1, input_file=None, model=MODEL, n=None, timeout=30, watch=()):
        """One load run; igload's JSON (or h2load's figures in its shape),
        with the CPU seconds of the watched processes over the measured
        window added as server_cpu_s."""
        out = os.path.join(self.tmp, label + ".json")
        logf = os.path.join(self.tmp, label + ".log")
        input_file = input_file or self.row_file
        if self.igload:
            argv = [IGLOAD, "-c", str(conns), "-m", str(streams), "-d", str(duration), "-w", str(warmup),
                    "--mode", mode, "--rows", str(rows), "--input", input_file,
                    "--content-type", "text/csv", "--accept", "text/csv", "--timeout", str(timeout),
                    "--json", out, "--quiet"]
            if rate:
                argv += ["-r", str(int(rate))]
            if n:
                argv += ["-n", str(n)]
            if model:
                argv += ["--model", model]
            argv.append(url)
        else:
            if mode == "stream":
                return self.stream_cli(label, url, input_file, watch)
            argv = ["h2load", "-D", str(int(max(1, duration))), "--warm-up-time", str(int(max(1, warmup))),
                    "-c", str(conns), "-m", str(streams), "-d", input_file, "-H", "content-type: text/csv",
                    "-H", "accept: text/csv", "-T", str(timeout), "--log-file", logf + ".req", url]
            if rate:
                argv.insert(1, "--rps=%g" % max(1.0, rate / conns))
        t_start = time.time()
        for attempt in range(30):  # bin/igload may be mid-rebuild (make all elsewhere)
            try:
                with open(logf, "w") as lf:
                    p = subprocess.Popen(argv, stdout=lf, stderr=subprocess.STDOUT)
                break
            except OSError as e:
                if attempt == 29:
                    raise Broken("%s: cannot run %s: %s" % (label, argv[0], e))
                time.sleep(1)
        pids = []
        for w in watch:
            pids += proc_tree(w)
        time.sleep(warmup if not n else 0)
        c0, t0 = cpu_s(pids), time.time()
        try:
            rc = p.wait(timeout=duration + warmup + timeout + 120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Broken("%s: the load generator did not finish (killed)" % label)
        c1, t1 = cpu_s(pids), time.time()
        with open(logf) as f:
            text = f.read()
        if self.igload:
            try:
                with open(out) as f:
                    res = json.load(f)
                res["requests"]["ok"]  # noqa: B018 - the shape is checked
                res["latency_ms"]["p99"]  # noqa: B018
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise Broken("%s: igload exited %d, its JSON does not parse (%s): %s" % (label, rc, e, text[-400:]))
        else:
            res = self.parse_h2load(text, logf + ".req", url, conns, streams, rate, duration)
        res["exit_status"] = rc
        res["server_cpu_s"] = round(c1 - c0, 3)
        res["window_s"] = round(t1 - t0, 3)
        res["wall_s"] = round(t1 - t_start, 3)
        return res

    def parse_h2load(self, text, reqlog, url, conns, streams, rate, duration):
        m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored, (\d+) timeout", text)
        s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
        if not (m and r and s):
            raise Broken("h2load's output does not parse: %s" % text[-400:])
        lat = []
        try:
            with open(reqlog) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] == "200":
                        lat.append(int(parts[2]) / 1000.0)
        except OSError:
            pass
        lat.sort()

        def pct(q):
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None
        ok = int(s.group(1))
        rps = float(m.group(2)) * ok / max(1, int(r.group(3)))
        return {"tool": "h2load", "url": url, "mode": "unary", "connections": conns, "streams": streams,
                "rate": rate, "duration_s": duration, "rows_per_request": 1,
                "requests": {"sent": int(r.group(2)), "ok": ok, "failed": int(r.group(5)) + int(s.group(4)) +
                             int(s.group(3)), "lost": 0},
                "rows_ok": ok, "requests_per_s": round(rps, 1), "rows_per_s": round(rps, 1),
                "errors": {"http_5xx": int(s.group(4)), "http_4xx": int(s.group(3)),
                           "timeout": int(r.group(7))},
                "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "p99_9": pct(0.999),
                               "max": lat[-1] if lat else None,
                               "mean": round(sum(lat) / len(lat), 3) if lat else None},
                "note": "h2load stands in for igload: closed-loop latencies, not from intended send times"}

    def stream_cli(self, label, url, input_file, watch):
        """S3 without igload: one infergate-cli transform stream."""
        m = re.match(r"(http://[^/]+)/transform/([^/]+)$", url)
        out = os.path.join(self.tmp, label + ".out.csv")
        pids = []
        for w in watch:
            pids += proc_tree(w)
        c0, t0 = cpu_s(pids), time.time()
        r = subprocess.run([CLI, "transform", "--url", m.group(1), "--endpoint", m.group(2), input_file, out],
                           capture_output=True, text=True)
        c1, t1 = cpu_s(pids), time.time()
        if r.returncode != 0:
            raise Broken("%s: infergate-cli exited %d: %s" % (label, r.returncode, r.stderr[-400:]))
        with open(out) as f:
            rows = sum(1 for _ in f)
        os.unlink(out)
        return {"tool": "infergate-cli (bin/igload missing)", "url": url, "mode": "stream", "connections": 1,
                "streams": 1, "rate": None, "duration_s": round(t1 - t0, 3), "rows_per_request": rows,
                "requests": {"sent": 1, "ok": 1, "failed": 0, "lost": 0}, "rows_ok": rows,
                "requests_per_s": None, "rows_per_s": round(rows / (t1 - t0), 1), "errors": {},
                "latency_ms": {"p50": None, "p90": None, "p99": None, "p99_9": None, "max": None, "mean": None},
                "exit_status": 0, "server_cpu_s": round(c1 - c0, 3), "window_s": round(t1 - t0, 3)}

    # ---- scenarios -------------------------------------------------------

    def d(self, full, quick):
        return quick if self.quick else full

    def s1(self):
        """One-row unary requests to an embedded model: infergate against nghttpd."""
        dur, warm = self.d(10, 2), self.d(1, 0.5)
        res = {"systems": ["infergate", "nghttpd"], "runs": []}
        gw = self.infergate("s1-infergate", {"bench": {"model": "file://" + MODEL}})
        url = "http://127.0.0.1:%d/endpoints/bench/invocations" % gw.port
        self.probe("infergate", url)
        r = self.load("s1-infergate", url, conns=32, streams=32, duration=dur, warmup=warm, watch=[gw.pid])
        gw.check()
        gw.stop()
        ng = self.nghttpd(ANSWER)
        nurl = "http://127.0.0.1:%d/invocations" % ng.port
        self.probe("nghttpd", nurl)
        rn = self.load("s1-nghttpd", nurl, conns=32, streams=32, duration=dur, warmup=warm, watch=[ng.pid])
        ng.check()
        for name, run in (("infergate", r), ("nghttpd", rn)):
            ok = run["requests"]["ok"]
            run["system"] = name
            run["server_cpu_us_per_request"] = round(run["server_cpu_s"] * 1e6 / ok, 2) if ok else None
            res["runs"].append(run)
        ratio = r["requests_per_s"] / rn["requests_per_s"] if rn["requests_per_s"] else None
        cpu_ratio = (r["server_cpu_us_per_request"] / rn["server_cpu_us_per_request"]
                     if r["server_cpu_us_per_request"] and rn["server_cpu_us_per_request"] else None)
        res["ratio_req_s"] = round(ratio, 3) if ratio else None
        res["ratio_cpu_per_request"] = round(cpu_ratio, 3) if cpu_ratio else None
        res["targets"] = [self.target("S1 infergate req/s >= 0.9 x nghttpd's, server CPU per request <= 1.2x",
                                      ratio is not None and cpu_ratio is not None and ratio >= 0.9
                                      and cpu_ratio <= 1.2,
                                      "req/s ratio %s, CPU per request ratio %s" % (fmt(ratio, 3), fmt(cpu_ratio, 3)))]
        for run in res["runs"]:
            log("  %-10s %10s req/s  p50 %s  p99 %s ms  server CPU %s us/request  failed %d" % (
                run["system"], fmt(run["requests_per_s"], 0), fmt(run["latency_ms"]["p50"], 2),
                fmt(run["latency_ms"]["p99"], 2), fmt(run["server_cpu_us_per_request"], 2),
                run["requests"]["failed"]))
        return res

    def s2_systems(self, fc):
        """Starts the four systems in front of the container fc: [(name, url, pids, proc)]."""
        out = [("direct", "http://127.0.0.1:%d/invocations" % fc.port, [fc.pid], None)]
        ng = self.nginx(fc.port)
        out.append(("nginx", "http://127.0.0.1:%d/invocations" % ng.port, [ng.pid], ng))
        nd = self.node(fc.port)
        out.append(("node-dataloader", "http://127.0.0.1:%d/invocations" % nd.port, [nd.pid], nd))
        gw = self.infergate("s2-infergate", {"bench": {"model": "http://127.0.0.1:%d" % fc.port}})
        out.append(("infergate", "http://127.0.0.1:%d/endpoints/bench/invocations" % gw.port, [gw.pid], gw))
        for name, url, _, _ in out:
            self.probe(name, url)
        self.s2_gw = gw
        return out

    def s2(self):
        """One-row unary requests through each system to the container, open loop."""
        rates = self.args.rates or self.d([1000, 3000, 10000, 20000, 40000, 70000, 100000], [1000, 10000])
        dur, warm = self.d(10, 2), self.d(1, 0.5)
        fc = self.container()
        systems = self.s2_systems(fc)
        res = {"systems": [s[0] for s in systems], "offered_req_s": rates, "runs": [],
               "container": "bin/fake-container " + " ".join(FC_SERVICE)}
        m0 = metrics(self.s2_gw.port)
        for name, url, pids, proc in systems:
            saturated = None
            for rate in rates:
                if saturated:
                    res["runs"].append({"system": name, "offered_req_s": rate,
                                        "skipped": "saturated at %d req/s offered" % saturated})
                    continue
                st0 = http_get(fc.port, "/stats")[1]
                run = self.load("s2-%s-%d" % (name, rate), url, rate=rate, duration=dur, warmup=warm,
                                timeout=self.d(30, 10), watch=pids)
                st1 = http_get(fc.port, "/stats")[1]
                for p in [fc] + ([proc] if proc else []):
                    p.check()
                run["system"] = name
                run["offered_req_s"] = rate
                try:
                    a, b = json.loads(st0), json.loads(st1)
                    calls, rows = b["calls"] - a["calls"], b["rows"] - a["rows"]
                    run["container_calls"], run["container_rows"] = calls, rows
                    run["container_rows_per_call"] = round(rows / calls, 2) if calls else None
                    # What the container served over the whole run (warm-up and the
                    # backlog included): an overloaded system's real rate, where
                    # igload counts only requests meant for the measured seconds.
                    run["container_rows_per_s"] = round(rows / run["wall_s"], 1)
                except (ValueError, KeyError):
                    pass
                res["runs"].append(run)
                lat = run["latency_ms"]
                log("  %-16s offered %7d/s  rows/s %9s  p50 %8s  p99 %8s  p99.9 %8s ms  failed %d lost %d"
                    "  rows/call %s  container rows/s %s" % (name, rate, fmt(run["rows_per_s"], 0), fmt(lat["p50"], 2),
                                        fmt(lat["p99"], 2), fmt(lat["p99_9"], 2), run["requests"]["failed"],
                                        run["requests"].get("lost", 0), fmt(run.get("container_rows_per_call"), 1),
                                        fmt(run.get("container_rows_per_s"), 0)))
                if run["rows_per_s"] < 0.5 * rate:
                    saturated = rate
        m1 = metrics(self.s2_gw.port)
        res["infergate_batch_rows"] = [[le, n] for le, n in hist_delta(m0, m1, "infergate_upstream_call_rows")]
        if not any(n for _, n in res["infergate_batch_rows"]):
            res["infergate_batch_rows"] = [[le, n] for le, n in hist_delta(m0, m1, "infergate_batch_rows")]
        res["targets"] = self.s2_targets(res["runs"])
        return res

    def s2_targets(self, runs):
        def pts(name):
            return [r for r in runs if r.get("system") == name and "skipped" not in r]

        def best(name):
            p = pts(name)
            return max(p, key=lambda r: r["rows_per_s"]) if p else None
        # node-dataloader's best rows/s at any offered load (its capacity),
        # with its p99 there; infergate's points that kept up with their load.
        node = best("node-dataloader")
        dpts = pts("direct")
        direct = max(dpts, key=lambda r: max(r["rows_per_s"], r.get("container_rows_per_s", 0))) if dpts else None
        direct_rps = max(direct["rows_per_s"], direct.get("container_rows_per_s", 0)) if direct else None
        gws = [r for r in pts("infergate") if r["rows_per_s"] >= 0.9 * r["offered_req_s"]
               and r["requests"]["failed"] == 0] or pts("infergate")
        t = []
        if node and gws:
            good = [r for r in gws if r["rows_per_s"] >= 3 * node["rows_per_s"]
                    and (r["latency_ms"]["p99"] or 1e9) <= (node["latency_ms"]["p99"] or 0)]
            top = max(gws, key=lambda r: r["rows_per_s"])
            t.append(self.target(
                "S2 infergate >= 3x node-dataloader's rows/s at equal or lower p99", bool(good),
                "node-dataloader %s rows/s at p99 %s ms (offered %d/s); infergate %s rows/s at p99 %s ms "
                "(offered %d/s): %sx" % (fmt(node["rows_per_s"], 0), fmt(node["latency_ms"]["p99"], 2),
                                         node["offered_req_s"], fmt(top["rows_per_s"], 0),
                                         fmt(top["latency_ms"]["p99"], 2), top["offered_req_s"],
                                         fmt(top["rows_per_s"] / max(1, node["rows_per_s"]), 2))))
        if direct and gws:
            top = max(gws, key=lambda r: r["rows_per_s"])
            ratio = top["rows_per_s"] / max(1, direct_rps)
            t.append(self.target("S2 infergate >= 50x direct's rows/s", ratio >= 50,
                                 "direct at most %s rows/s (the container's own count when overloaded), "
                                 "infergate %s rows/s: %sx" % (fmt(direct_rps, 0), fmt(top["rows_per_s"], 0),
                                                               fmt(ratio, 1))))
        return t

    def s3(self):
        """Rows streamed through /transform against the compute floor."""
        total = self.args.stream_rows or self.d(10_000_000, 200_000)
        streams = self.d(8, 2)
        floor = os.path.join(self.tmp, "stream-floor")
        mk = lambda v: subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "print-" + v],
                                      capture_output=True, text=True).stdout.split()
        cc = ["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Iinclude", "-Ibuild/rel/gen"] + \
            mk("PKG_CFLAGS") + ["-o", floor, "load/stream-floor.c", "build/rel/libinfergate.a"] + mk("LDLIBS")
        for _ in range(10):  # build/rel/libinfergate.a may be mid-rebuild (make elsewhere)
            r = subprocess.run(cc, cwd=ROOT, capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(3)
        if r.returncode != 0:
            raise Broken("cannot compile load/stream-floor.c: %s" % r.stderr[-400:])
        data = "/tmp/ig-stream-v1-%d.csv" % total
        if not os.path.exists(data):
            if subprocess.run([floor, "gen", str(total), data]).returncode != 0:
                raise Broken("stream-floor gen failed")
        fr = subprocess.run([floor, "run", "-c", "1048576", MODEL, data, "/dev/null"], capture_output=True,
                            text=True)
        m = re.search(r"rows=(\d+) .*rows_per_s=(\d+)", fr.stdout)
        if fr.returncode != 0 or not m:
            raise Broken("stream-floor run failed: %s %s" % (fr.stdout[-200:], fr.stderr[-200:]))
        floor_rps = int(m.group(2))
        res = {"systems": ["infergate", "floor (load/stream-floor.c)"], "rows": total, "runs": [],
               "floor": {"system": "floor (load/stream-floor.c)", "rows": int(m.group(1)),
                         "rows_per_s": floor_rps, "output": fr.stdout.strip()}}
        gw = self.infergate("s3-infergate", {"bench": {"model": "file://" + MODEL}})
        url = "http://127.0.0.1:%d/transform/bench" % gw.port
        if self.igload:
            # The input: the data file's first 100,000 rows, cycled.
            inp = os.path.join(self.tmp, "stream-input.csv")
            with open(data) as fi, open(inp, "w") as fo:
                for i, line in enumerate(fi):
                    if i >= 100_000:
                        break
                    fo.write(line)
            per = total // streams
            run = self.load("s3-infergate", url, conns=streams, streams=1, n=streams, mode="stream", rows=per,
                            input_file=inp, duration=3600, warmup=0, timeout=600, watch=[gw.pid])
        else:
            run = self.load("s3-infergate", url, mode="stream", input_file=data, watch=[gw.pid])
        gw.check()
        run["system"] = "infergate"
        run["ratio_to_floor"] = round(run["rows_per_s"] / floor_rps, 3)
        run["server_cpu_us_per_row"] = round(run["server_cpu_s"] * 1e6 / max(1, run["rows_ok"]), 3)
        res["runs"].append(run)
        log("  floor      %10s rows/s (one thread, no network)" % fmt(floor_rps, 0))
        log("  infergate  %10s rows/s over %d stream(s), %s rows: %sx the floor, %s us CPU a row" % (
            fmt(run["rows_per_s"], 0), run.get("requests", {}).get("ok", 1), fmt(run["rows_ok"], 0),
            fmt(run["ratio_to_floor"], 3), fmt(run["server_cpu_us_per_row"], 3)))
        res["targets"] = []
        return res

    def s4(self):
        """Idle HTTP/2 connections held open: RSS per connection."""
        n = self.args.idle or self.d(10000, 1000)
        fc = self.container()
        res = {"systems": ["infergate", "nginx", "node-dataloader", "nghttpd"], "connections": n, "runs": []}
        starts = [
            ("infergate", lambda: self.infergate(
                "s4-infergate", {"bench": {"model": "http://127.0.0.1:%d" % fc.port}},
                "max_connections = %d\n" % (n + 1000))),
            ("nginx", lambda: self.nginx(fc.port)),
            ("node-dataloader", lambda: self.node(fc.port)),
            ("nghttpd", lambda: self.nghttpd(ANSWER)),
        ]
        for name, start in starts:
            p = start()
            url = ("http://127.0.0.1:%d/endpoints/bench/invocations" % p.port if name == "infergate"
                   else "http://127.0.0.1:%d/invocations" % p.port)
            self.probe(name, url)
            time.sleep(0.3)
            pids = proc_tree(p.pid)
            before = rss_kib(pids)
            cl = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "load/bench/idle_conns.py"),
                                   "127.0.0.1", str(p.port), str(n)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
            t0 = time.time()
            line = cl.stdout.readline().strip()
            setup = time.time() - t0
            mm = re.match(r"open (\d+) failed (\d+)", line)
            if not mm:
                cl.kill()
                raise Broken("%s: the idle-connection client printed %r" % (name, line))
            time.sleep(1.0)
            p.check()
            after = rss_kib(proc_tree(p.pid))
            conns_metric = None
            if name == "infergate":
                conns_metric = metrics(p.port).get("infergate_connections")
            cl.stdin.close()
            tail = cl.stdout.read()
            cl.wait()
            mc = re.search(r"closed_by_server (\d+)", tail)
            opened = int(mm.group(1))
            run = {"system": name, "connections_requested": n, "connections_open": opened,
                   "connections_failed": int(mm.group(2)), "closed_by_server": int(mc.group(1)) if mc else None,
                   "setup_s": round(setup, 2), "rss_before_kib": before, "rss_after_kib": after,
                   "rss_per_connection_kib": round((after - before) / opened, 3) if opened else None,
                   "processes": len(pids), "gateway_connections_metric": conns_metric}
            res["runs"].append(run)
            log("  %-16s %6d open (%d failed, %s closed by the server)  RSS %s -> %s KiB: %s KiB a connection" % (
                name, opened, run["connections_failed"], run["closed_by_server"], before, after,
                fmt(run["rss_per_connection_kib"], 2)))
            p.stop()
        gwr = res["runs"][0]
        ok = gwr["connections_open"] == n and gwr["rss_per_connection_kib"] is not None
        res["targets"] = [self.target("S4 infergate <= 10 KiB RSS per idle connection",
                                      ok and gwr["rss_per_connection_kib"] <= 10,
                                      "%s KiB a connection, %d of %d open" % (
                                          fmt(gwr["rss_per_connection_kib"], 2), gwr["connections_open"], n))]
        return res

    def s5(self):
        """The container failing 10% of calls with 503."""
        rate = self.args.s5_rate or self.d(20000, 5000)
        dur, warm = self.d(10, 2), self.d(1, 0.5)
        fc = self.container("fake-container-503", ["--fail-503", "0.1"])
        res = {"systems": ["infergate", "node-dataloader", "nginx", "direct"], "offered_req_s": rate, "runs": [],
               "container": "bin/fake-container " + " ".join(FC_SERVICE) + " --fail-503 0.1"}
        gw = self.infergate("s5-infergate", {"bench": {"model": "http://127.0.0.1:%d" % fc.port}})
        nd = self.node(fc.port)
        ng = self.nginx(fc.port)
        systems = [("infergate", "http://127.0.0.1:%d/endpoints/bench/invocations" % gw.port, gw),
                   ("node-dataloader", "http://127.0.0.1:%d/invocations" % nd.port, nd),
                   ("nginx", "http://127.0.0.1:%d/invocations" % ng.port, ng),
                   ("direct", "http://127.0.0.1:%d/invocations" % fc.port, fc)]
        for name, url, p in systems:
            m0 = metrics(gw.port) if name == "infergate" else None
            run = self.load("s5-%s" % name, url, rate=rate, duration=dur, warmup=warm, timeout=self.d(30, 10),
                            watch=[p.pid])
            p.check()
            run["system"] = name
            run["offered_req_s"] = rate
            run["goodput_fraction"] = round(run["rows_per_s"] / rate, 4)
            sent = run["requests"]["sent"] or 1
            run["error_rate"] = round(run["requests"]["failed"] / sent, 4)
            if m0 is not None:
                m1 = metrics(gw.port)
                run["gateway"] = {
                    "upstream_calls": mdelta(m0, m1, "infergate_upstream_calls_total"),
                    "upstream_calls_failed": mdelta(m0, m1, "infergate_upstream_calls_failed_total"),
                    "retries": mdelta(m0, m1, "infergate_upstream_retries_total"),
                    "retries_denied": mdelta(m0, m1, "infergate_upstream_retries_denied_total"),
                    "breaker_opens": mdelta(m0, m1, "infergate_upstream_breaker_opens_total")}
            res["runs"].append(run)
            g = run.get("gateway", {})
            log("  %-16s offered %d/s  goodput %s rows/s (%s%%)  errors %s%% %s  lost %d  p99 %s ms%s" % (
                name, rate, fmt(run["rows_per_s"], 0), fmt(100 * run["goodput_fraction"], 1),
                fmt(100 * run["error_rate"], 2), json.dumps(run.get("errors", {})),
                run["requests"].get("lost", 0), fmt(run["latency_ms"]["p99"], 2),
                "  retries %d (denied %d) of %d calls, %d failed" % (
                    g["retries"], g["retries_denied"], g["upstream_calls"], g["upstream_calls_failed"]) if g else ""))
        gwr = res["runs"][0]
        res["targets"] = [self.target("S5 infergate goodput >= 85% of offered load, 0 requests lost",
                                      gwr["goodput_fraction"] >= 0.85 and gwr["requests"].get("lost", 0) == 0,
                                      "goodput %s%%, lost %d" % (fmt(100 * gwr["goodput_fraction"], 1),
                                                                 gwr["requests"].get("lost", 0)))]
        return res

    def s6(self):
        """Through the sidecar pod (podman): as S2 at one offered load."""
        if os.getuid() != 0 or not shutil.which("podman") or not shutil.which("kubectl"):
            raise Skipped("skipped: needs root and podman (and kubectl)")
        rate = self.args.s6_rate or self.d(20000, 3000)
        dur, warm = self.d(10, 2), self.d(1, 0.5)
        env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "build/k8s/containers.conf"))

        def pm(*a, **kw):
            return subprocess.run(["podman"] + list(a), env=env, capture_output=True, text=True, **kw)
        have = (os.path.exists(env["CONTAINERS_CONF"]) and pm("image", "exists", "localhost/infergate:test").returncode == 0
                and pm("image", "exists", "localhost/infergate-model:test").returncode == 0)
        if not have:
            if self.quick:
                raise Skipped("skipped: the pod's images are missing (make k8s-images builds them; "
                              "QUICK=1 does not)")
            log("  make k8s-images (the pod's images are missing)")
            if subprocess.run(["make", "--no-print-directory", "-C", ROOT, "k8s-images"]).returncode != 0:
                raise Broken("make k8s-images failed")
        yaml = os.path.join(self.tmp, "pod.yaml")
        with open(yaml, "w") as f:
            if subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "docker/k8s/test")], stdout=f,
                              env=env).returncode != 0:
                raise Broken("kubectl kustomize docker/k8s/test failed")
        end = time.time() + self.d(300, 60)
        while pm("pod", "exists", POD).returncode == 0:
            if time.time() > end:
                raise Skipped("skipped: pod %s held by another run (make k8s-e2e?)" % POD)
            time.sleep(2)
        with open(yaml) as f:
            r = pm("kube", "play", "--replace", "-", stdin=f)
        if r.returncode != 0:
            raise Broken("podman kube play: %s" % r.stderr[-400:])
        self.pod_yaml = (yaml, env)
        end = time.time() + 30
        while http_get(18081, "/readyz")[0] != 200:
            if time.time() > end:
                raise Broken("the pod's gateway not ready within 30 s")
            time.sleep(0.1)
        row = os.path.join(self.tmp, "digits-row.csv")
        with open(os.path.join(ROOT, "conf/data/digits.csv")) as f, open(row, "w") as fo:
            fo.write(f.readline())
        model = os.path.join(ROOT, "conf/models/demo-kmeans.json")
        _, want = h2_post("http://127.0.0.1:18080/invocations", row)
        gw_pid = int(pm("inspect", "--format", "{{.State.Pid}}", POD + "-infergate").stdout.strip() or 0)
        fc_pid = int(pm("inspect", "--format", "{{.State.Pid}}", POD + "-model").stdout.strip() or 0)
        systems = [("pod direct", "http://127.0.0.1:18080/invocations", fc_pid),
                   ("pod infergate", "http://127.0.0.1:18081/endpoints/model/invocations", gw_pid)]
        res = {"systems": [s[0] for s in systems], "offered_req_s": rate, "runs": [],
               "pod": "docker/k8s/test (podman kube play), conf/models/demo-kmeans.json (D=64)"}
        for name, url, pid in systems:
            self.probe(name, url, want=want, row_file=row)
            run = self.load("s6-" + name.replace(" ", "-"), url, rate=rate, duration=dur, warmup=warm,
                            input_file=row, model=model, timeout=self.d(30, 10), watch=[pid] if pid else [])
            run["system"] = name
            run["offered_req_s"] = rate
            res["runs"].append(run)
            lat = run["latency_ms"]
            log("  %-16s offered %7d/s  rows/s %9s  p50 %8s  p99 %8s  p99.9 %8s ms  failed %d lost %d" % (
                name, rate, fmt(run["rows_per_s"], 0), fmt(lat["p50"], 2), fmt(lat["p99"], 2),
                fmt(lat["p99_9"], 2), run["requests"]["failed"], run["requests"].get("lost", 0)))
        res["targets"] = []
        return res

    def pod_down(self):
        if getattr(self, "pod_yaml", None):
            yaml, env = self.pod_yaml
            self.pod_yaml = None
            with open(yaml) as f:
                r = subprocess.run(["podman", "kube", "down", "-"], stdin=f, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                log("bench: podman kube down failed: %s" % r.stderr[-300:])

    def target(self, name, met, detail):
        t = {"target": name, "met": bool(met), "detail": detail}
        if self.quick:
            t["judged"] = False
        return t


def fmt(v, nd):
    if v is None:
        return "-"
    if nd == 0:
        return "{:,.0f}".format(v)
    return "{:,.{}f}".format(v, nd)


TITLES = {
    "S1": "one-row unary requests to an embedded model: infergate against the nghttpd ceiling",
    "S2": "one-row unary requests to the fake container through each system, open loop",
    "S3": "rows streamed through /transform against the compute floor",
    "S4": "idle HTTP/2 connections held open: RSS per connection",
    "S5": "the container failing 10% of calls with 503",
    "S6": "through the sidecar pod (podman), as S2 at one offered load",
}


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d CPUs (%s), %s" % (os.cpu_count(), model, os.uname().release)


def commit():
    r = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %cI"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return r.stdout.strip() + (" (tree modified)" if dirty else "")


def plots(out, results):
    """gnuplot SVGs: S2 throughput against p99, the batch sizes. Returns the files made."""
    made = []
    gp = shutil.which("gnuplot")
    if not gp:
        log("bench: gnuplot not found (make bench-deps installs it): no plots")
        return made
    s2 = results.get("S2", {})
    runs = [r for r in s2.get("runs", []) if "skipped" not in r and r.get("latency_ms", {}).get("p99")]
    if runs:
        datf = os.path.join(out, "s2-throughput-p99.dat")
        names = []
        with open(datf, "w") as f:
            for sysname in s2["systems"]:
                pts = [r for r in runs if r["system"] == sysname]
                if not pts:
                    continue
                names.append(sysname)
                f.write("# %s\n" % sysname)
                for r in sorted(pts, key=lambda r: r["offered_req_s"]):
                    f.write("%g %g %d\n" % (max(1.0, r["rows_per_s"]), r["latency_ms"]["p99"], r["offered_req_s"]))
                f.write("\n\n")
        svg = os.path.join(out, "s2-throughput-p99.svg")
        script = ["set terminal svg size 800,500 dynamic font 'sans,12'", "set output '%s'" % svg,
                  "set title 'S2: one-row requests to the fake container, open loop'",
                  "set xlabel 'rows/s answered (log)'", "set ylabel 'p99 latency, ms (log)'",
                  "set logscale xy", "set grid", "set key top left"]
        plotsp = ["'%s' index %d using 1:2 with linespoints title '%s'" % (datf, i, n) for i, n in enumerate(names)]
        script.append("plot " + ", ".join(plotsp))
        gnuplot(gp, script, svg, datf, made)
    hist = s2.get("infergate_batch_rows")
    if hist and any(n for _, n in hist):
        datf = os.path.join(out, "batch-rows.dat")
        prev = 0
        with open(datf, "w") as f:
            for le, n in hist:
                label = ("%g-%g" % (prev + 1, le) if le != float("inf") else ">%g" % prev) if le - prev > 1 \
                    else "%g" % le
                f.write('"%s" %g\n' % (label, n))
                prev = le
        svg = os.path.join(out, "batch-rows.svg")
        script = ["set terminal svg size 800,450 dynamic font 'sans,12'", "set output '%s'" % svg,
                  "set title 'S2: rows per call from infergate to the container (its /metrics)'",
                  "set style data histograms", "set style fill solid 0.6", "set boxwidth 0.8",
                  "set xlabel 'rows per call (histogram bucket)'", "set ylabel 'calls'", "set xtics rotate by -45",
                  "set grid ytics", "plot '%s' using 2:xtic(1) notitle" % datf]
        gnuplot(gp, script, svg, datf, made)
    return made


def gnuplot(gp, script, svg, datf, made):
    """Run <script> (lines) through gnuplot <gp>; <svg> goes to <made> when
    it was drawn; its data file <datf> is removed either way."""
    r = subprocess.run([gp], input="\n".join(script) + "\n", text=True, capture_output=True)
    if r.returncode == 0:
        made.append(svg)
    else:
        log("bench: gnuplot failed: %s" % r.stderr[-300:])
    os.unlink(datf)


def report(out, results, meta, made):
    L = ["# Benchmarks of issue 19 (`make bench%s`)" % (" QUICK=1" if meta["quick"] else ""), "",
         "Generated by `load/bench/bench.py` on %s, commit %s, %s, load average before %s, load generator %s." % (
             meta["date"], meta["commit"], meta["machine"], meta["loadavg"], meta["tool"]), ""]
    if meta["quick"]:
        L += ["QUICK=1: every scenario briefly; the figures are not judged.", ""]
    if meta.get("note"):
        L += [meta["note"], ""]
    L += ["Systems: **infergate** (bin/infergate), **direct** (clients call bin/fake-container, one row a call), "
          "**nginx** (Debian nginx, h2c reverse proxy, HTTP/1.1 keep-alive upstream, no batching), "
          "**node-dataloader** (load/peers/node-dataloader: node's http2 + DataLoader, maxBatchSize 256), "
          "**nghttpd** (a static file: the ceiling of an nghttp2 server). The container: "
          "`bin/fake-container %s` (2 ms a call, 5 us a row, 4 calls at once)." % " ".join(FC_SERVICE), "",
          "## Targets", "", "| target | met | figures |", "| --- | --- | --- |"]
    for sc in sorted(results):
        for t in results[sc].get("targets", []):
            L.append("| %s | %s | %s |" % (t["target"], ("yes" if t["met"] else "**no**") +
                                           (" (not judged)" if t.get("judged") is False else ""), t["detail"]))
    L.append("")
    for sc in sorted(results):
        r = results[sc]
        L += ["## %s: %s" % (sc, TITLES[sc]), ""]
        if r.get("status") != "ok":
            L += [r.get("status", "?"), ""]
            continue
        if sc in ("S1", "S2", "S5", "S6"):
            L += ["| system | offered req/s | rows/s | p50 ms | p99 ms | p99.9 ms | max ms | failed | lost | "
                  "server CPU us/req | container rows/call | container rows/s |", "|" + " --- |" * 12]
            for run in r["runs"]:
                if "skipped" in run:
                    L.append("| %s | %s | %s | | | | | | | | | |" % (run["system"], fmt(run["offered_req_s"], 0),
                                                                run["skipped"]))
                    continue
                lat = run["latency_ms"]
                ok = run["requests"]["ok"]
                cpu = run.get("server_cpu_us_per_request") or (run["server_cpu_s"] * 1e6 / ok if ok else None)
                L.append("| %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s |" % (
                    run["system"], fmt(run.get("offered_req_s"), 0) if run.get("offered_req_s") else "closed loop",
                    fmt(run["rows_per_s"], 0), fmt(lat["p50"], 2), fmt(lat["p99"], 2), fmt(lat["p99_9"], 2),
                    fmt(lat["max"], 2), run["requests"]["failed"], run["requests"].get("lost", 0), fmt(cpu, 1),
                    fmt(run.get("container_rows_per_call"), 1), fmt(run.get("container_rows_per_s"), 0)))
            L += ["", "rows/s: igload's answers (200, checked) to the requests meant for the measured seconds; "
                  "an overloaded system's backlog from the warm-up takes its measured seconds, so its real rate "
                  "is the container's own count over the whole run (container rows/s). Server CPU: the "
                  "system's process tree (for direct, the container) over the measured seconds, per "
                  "request answered.", ""]
        if sc == "S1":
            L += ["req/s infergate/nghttpd %s; server CPU per request infergate/nghttpd %s "
                  "(utime+stime from /proc/PID/stat over the measured seconds; 32 connections x 32 streams, "
                  "closed loop)." % (fmt(r.get("ratio_req_s"), 3), fmt(r.get("ratio_cpu_per_request"), 3)), ""]
        if sc == "S2":
            for f in made:
                L += ["![%s](%s)" % (os.path.basename(f), os.path.basename(f)), ""]
        if sc == "S3":
            run = r["runs"][0]
            L += ["| system | rows | rows/s | x floor | server CPU us/row |", "| --- | --- | --- | --- | --- |",
                  "| floor (load/stream-floor.c, one thread, no network) | %s | %s | 1 | |" % (
                      fmt(r["floor"]["rows"], 0), fmt(r["floor"]["rows_per_s"], 0)),
                  "| infergate (%s, %s stream(s)) | %s | %s | %s | %s |" % (
                      run.get("tool", meta["tool"]), run["requests"]["ok"], fmt(run["rows_ok"], 0),
                      fmt(run["rows_per_s"], 0), fmt(run["ratio_to_floor"], 3), fmt(run["server_cpu_us_per_row"], 3)),
                  ""]
        if sc == "S4":
            L += ["| system | connections open | failed | closed by server | RSS before KiB | RSS after KiB | "
                  "KiB per connection |", "| --- | --- | --- | --- | --- | --- | --- |"]
            for run in r["runs"]:
                L.append("| %s | %d | %d | %s | %d | %d | %s |" % (
                    run["system"], run["connections_open"], run["connections_failed"], run["closed_by_server"],
                    run["rss_before_kib"], run["rss_after_kib"], fmt(run["rss_per_connection_kib"], 2)))
            L += ["", "RSS: VmRSS of the process and its children (nginx's master and workers).", ""]
        if sc == "S5":
            g = r["runs"][0].get("gateway", {})
            L += ["infergate: goodput %s%% of the offered load, %d upstream calls, %d failed, %d retries "
                  "(%d denied by the retry budget), %d breaker opens (its /metrics)." % (
                      fmt(100 * r["runs"][0]["goodput_fraction"], 1), g.get("upstream_calls", 0),
                      g.get("upstream_calls_failed", 0), g.get("retries", 0), g.get("retries_denied", 0),
                      g.get("breaker_opens", 0)), ""]
    with open(os.path.join(out, "REPORT.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scenarios", default="S1,S2,S3,S4,S5,S6")
    ap.add_argument("--out", default=os.path.join(ROOT, "load/results"))
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], help="S2's offered loads, req/s")
    ap.add_argument("--stream-rows", type=int, help="S3's rows")
    ap.add_argument("--idle", type=int, help="S4's connections")
    ap.add_argument("--s5-rate", type=int)
    ap.add_argument("--s6-rate", type=int)
    ap.add_argument("--note", default="", help="a line for REPORT.md (e.g. the machine was shared)")
    ap.add_argument("--report-only", action="store_true",
                    help="write REPORT.md and the plots again from the JSON files in --out")
    args = ap.parse_args()
    if args.report_only:
        out = os.path.abspath(args.out)
        results = {}
        for sc in TITLES:
            f = os.path.join(out, sc + ".json")
            if os.path.exists(f):
                with open(f) as fh:
                    results[sc] = json.load(fh)
        if not results:
            print("bench: no S*.json in %s" % out, file=sys.stderr)
            return 1
        first = results[sorted(results)[0]]
        meta = {k: first.get(k, "?") for k in ("date", "commit", "machine", "tool", "loadavg")}
        meta["quick"] = first.get("quick", False)
        meta["note"] = args.note or first.get("note", "")
        report(out, results, meta, plots(out, results))
        return 0
    wanted = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    for s in wanted:
        if s not in TITLES:
            ap.error("unknown scenario %s" % s)
    for f in (GW, FC):
        if not os.access(f, os.X_OK):
            print("bench: %s missing: make all builds it" % f, file=sys.stderr)
            return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1 << 20 if os.getuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    try:
        b = Bench(args)
    except Broken as e:
        print("bench: BROKEN: %s" % e, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(), "machine": machine(), "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
            "tool": b.tool, "quick": args.quick, "note": args.note}
    log("bench: %s, %s, commit %s, load average %s, load generator %s%s" % (
        meta["date"], meta["machine"], meta["commit"], meta["loadavg"], b.tool, ", QUICK" if args.quick else ""))
    t_all = time.time()
    results = {}
    try:
        for sc in wanted:
            log("%s: %s" % (sc, TITLES[sc]))
            t0 = time.time()
            try:
                r = getattr(b, sc.lower())()
                r["status"] = "ok"
            except Skipped as e:
                r = {"status": str(e), "runs": [], "targets": []}
                log("  " + str(e))
            except Broken as e:
                r = {"status": "broken: %s" % e, "runs": [], "targets": []}
                b.broken.append(sc)
                log("  BROKEN: %s" % e)
            except Exception as e:  # a bug here, or a result of an unexpected shape
                r = {"status": "broken: %s: %s" % (type(e).__name__, e), "runs": [], "targets": []}
                b.broken.append(sc)
                log("  BROKEN: %s" % traceback.format_exc())
            finally:
                b.stop_all()
                b.pod_down()
            r.update({"scenario": sc, "title": TITLES[sc], "quick": args.quick, "seconds": round(time.time() - t0, 1),
                      **{k: meta[k] for k in ("date", "commit", "machine", "tool", "loadavg", "note")}})
            results[sc] = r
            with open(os.path.join(out, sc + ".json"), "w") as f:
                json.dump(r, f, indent=1, default=lambda x: None)
                f.write("\n")
            log("  (%s s)" % r["seconds"])
    finally:
        b.stop_all()
        b.pod_down()
    made = plots(out, results)
    report(out, results, meta, made)
    # Every scenario's results must parse back.
    for sc in wanted:
        try:
            with open(os.path.join(out, sc + ".json")) as f:
                r = json.load(f)
            if r["status"] == "ok" and not r["runs"]:
                raise ValueError("no runs")
        except (OSError, ValueError, KeyError) as e:
            b.broken.append(sc)
            log("bench: %s.json does not parse: %s" % (sc, e))
    log("targets%s:" % (" (QUICK: not judged)" if args.quick else ""))
    for sc in wanted:
        for t in results[sc].get("targets", []):
            log("  %-4s %s: %s" % ("met" if t["met"] else "MISS", t["target"], t["detail"]))
    log("bench: results in %s (REPORT.md, %s), %.0f s in all" % (
        out, ", ".join(os.path.basename(f) for f in made) or "no plots", time.time() - t_all))
    if b.broken:
        log("bench: BROKEN: %s" % ", ".join(sorted(set(b.broken))))
        log("bench: files kept in %s" % b.tmp)
        return 1
    shutil.rmtree(b.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
