#!/usr/bin/python3
"""load/admin-load.py - the control-plane client of load/bench-admin.sh.

Standard library only (http.client, HTTP/1.1 keep-alive), against a gateway
with admin_auth = off. Subcommands:

  setup ADMIN_PORT DATA_PORT MODEL_A MODEL_B LIST STABLE
      CreateModel bench-a (MODEL_A) and bench-b (MODEL_B), built-in kmeans
      with 2 features; CreateEndpointConfig cfg-a, cfg-b (one variant each);
      CreateEndpoint list-000..list-<LIST-1>, stable-0..stable-<STABLE-1> and
      upd on cfg-a; waits for every one InService (polling DescribeEndpoint)
      and checks that each stable-* and upd answers ROW with model A's answer.
  churn ADMIN_PORT DATA_PORT COUNT STOP_FILE OUT_JSON
      Until STOP_FILE exists: CreateEndpoint churn-000..churn-<COUNT-1> on
      cfg-a, wait InService, invoke each once (model A's answer expected);
      UpdateEndpoint each to cfg-b, wait InService on cfg-b, invoke each once
      (model B's answer expected); DeleteEndpoint each, wait until
      DescribeEndpoint says it does not exist, invoke each once (not 2xx
      expected). Writes counts and timings to OUT_JSON. Once STOP_FILE
      exists, deletes the churn endpoints left (after the count).
  update ADMIN_PORT DATA_PORT NAME STOP_FILE OUT_JSON
      Until STOP_FILE exists: UpdateEndpoint NAME to the other configuration
      (cfg-a <-> cfg-b), wait InService on it, invoke once (the new model's
      answer expected). Writes counts and timings to OUT_JSON. Once STOP_FILE
      exists, waits for an update under way to finish.

A transition counts as done when DescribeEndpoint shows its target state;
transitions still under way when STOP_FILE appears are not counted. Any
unexpected answer (a failed call, an endpoint Failed, a wrong prediction) is
counted and listed (at most 20) in OUT_JSON under "errors"; bench-admin.sh
fails the run on any. Exit status: 0 when the loop ran, 1 on a setup error,
2 on bad usage.
"""
import http.client
import json
import os
import sys
import time

ROW = b"1,2.5\n"
# kmeans-2d (tests/data) has centroids (0,0) (4,0) (0,3): cluster 2 at
# sqrt(1.25); model B (written by bench-admin.sh) has (1,2.5) first.
ANSWER = {"cfg-a": b"2.0,1.118033988749895", "cfg-b": b"0.0,0.0"}
POLL_S = 0.005
TRANSITION_TIMEOUT_S = 30.0
MAX_ERRORS_KEPT = 20


class Admin:
    """One keep-alive HTTP/1.1 connection to the admin listener."""

    def __init__(self, port):
        self.port = port
        self.conn = None
        self.calls = 0
        self.reconnects = 0

    def call(self, op, body):
        data = json.dumps(body).encode()
        hdrs = {"Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "SageMaker." + op}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                self.conn.request("POST", "/", body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                status = r.status
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection closed by the server between calls:
                # one retry on a new connection, counted.
                self.conn.close()
                self.conn = None
                self.reconnects += 1
                if attempt:
                    raise
        self.calls += 1
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed, raw


class Data:
    """One keep-alive HTTP/1.1 connection to the data plane."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def invoke(self, name):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            self.conn.request("POST", "/endpoints/%s/invocations" % name, body=ROW,
                              headers={"Content-Type": "text/csv", "Accept": "text/csv"})
            r = self.conn.getresponse()
            body = r.read().strip()
            if r.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return r.status, body
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = None
            return -1, repr(e).encode()


class Report:
    def __init__(self):
        self.errors = 0
        self.kept = []

    def error(self, msg):
        self.errors += 1
        if len(self.kept) < MAX_ERRORS_KEPT:
            self.kept.append(msg)


def is_not_found(status, parsed):
    return (status == 400 and isinstance(parsed, dict)
            and parsed.get("__type", "").endswith("ValidationException")
            and "Could not find endpoint" in parsed.get("message", ""))


def wait_states(admin, names, target, stop, report):
    """Polls DescribeEndpoint on every name until each reaches <target>:
    ("InService", CONFIG) or ("gone", None). -> {name: seconds to reach it}
    for those that did; stops early (not counting the rest) when <stop>()."""
    pending = {n: time.monotonic() for n in names}
    t_start = {n: pending[n] for n in names}
    done = {}
    while pending:
        if stop():
            return done, False
        for n in list(pending):
            status, parsed, raw = admin.call("DescribeEndpoint", {"EndpointName": n})
            now = time.monotonic()
            if target[0] == "gone":
                if is_not_found(status, parsed):
                    done[n] = now - t_start[n]
                    del pending[n]
                elif status != 200:
                    report.error("DescribeEndpoint %s while deleting: %d %s" % (n, status, raw[:200]))
                    del pending[n]
                continue
            if status != 200 or not isinstance(parsed, dict):
                report.error("DescribeEndpoint %s: %d %s" % (n, status, raw[:200]))
                del pending[n]
                continue
            st = parsed.get("EndpointStatus")
            if st == "InService":
                if parsed.get("EndpointConfigName") != target[1] or parsed.get("FailureReason"):
                    report.error("%s InService on %s (wanted %s), FailureReason %r"
                                 % (n, parsed.get("EndpointConfigName"), target[1],
                                    parsed.get("FailureReason")))
                else:
                    done[n] = now - t_start[n]
                del pending[n]
            elif st == "Failed":
                report.error("%s Failed: %s" % (n, parsed.get("FailureReason")))
                del pending[n]
            elif now - t_start[n] > TRANSITION_TIMEOUT_S:
                report.error("%s still %s after %.0f s" % (n, st, TRANSITION_TIMEOUT_S))
                del pending[n]
        if pending:
            time.sleep(POLL_S)
    return done, True


def expect_ok(admin, report, op, body):
    status, parsed, raw = admin.call(op, body)
    if status != 200:
        report.error("%s %s: %d %s" % (op, json.dumps(body), status, raw[:200]))
        return False
    return True


def probe(data, report, name, config):
    """One invocation of <name>: the answer of <config>'s model, or (config
    None) not a 2xx (the endpoint is gone)."""
    status, body = data.invoke(name)
    if config is None:
        if 200 <= status < 300:
            report.error("%s answered %d %r after DescribeEndpoint said it was gone"
                         % (name, status, body[:100]))
        return
    if status != 200 or body != ANSWER[config]:
        report.error("%s (%s) answered %d %r, wanted 200 %r"
                     % (name, config, status, body[:100], ANSWER[config]))


def settle(admin, name, report):
    """Waits until <name> is not Creating/Updating/Deleting. -> its
    status, or None when it does not exist."""
    t0 = time.monotonic()
    while True:
        status, parsed, raw = admin.call("DescribeEndpoint", {"EndpointName": name})
        if is_not_found(status, parsed):
            return None
        if status != 200 or not isinstance(parsed, dict):
            report.error("DescribeEndpoint %s: %d %s" % (name, status, raw[:200]))
            return None
        st = parsed.get("EndpointStatus")
        if st not in ("Creating", "Updating", "Deleting", "SystemUpdating"):
            return st
        if time.monotonic() - t0 > TRANSITION_TIMEOUT_S:
            report.error("%s still %s after %.0f s" % (name, st, TRANSITION_TIMEOUT_S))
            return None
        time.sleep(POLL_S)


def teardown(admin, names, report):
    """After the measured window (not counted): deletes the churn endpoints
    left by a round cut short, so that the next churn phase starts clean."""
    left = []
    for n in names:
        if settle(admin, n, report) is not None:
            expect_ok(admin, report, "DeleteEndpoint", {"EndpointName": n})
            left.append(n)
    wait_states(admin, left, ("gone", None), lambda: False, report)


def quantiles(xs):
    if not xs:
        return None
    xs = sorted(xs)
    n = len(xs)
    return {"n": n, "p50_ms": xs[(n - 1) // 2] * 1e3, "max_ms": xs[-1] * 1e3,
            "mean_ms": sum(xs) / n * 1e3}


def cmd_setup(admin_port, data_port, model_a, model_b, n_list, n_stable):
    admin, data, report = Admin(admin_port), Data(data_port), Report()
    t0 = time.monotonic()
    for m, path in (("bench-a", model_a), ("bench-b", model_b)):
        expect_ok(admin, report, "CreateModel", {
            "ModelName": m, "ExecutionRoleArn": "arn:aws:iam::000000000000:role/bench",
            "PrimaryContainer": {"Image": "kmeans", "ModelDataUrl": "file://" + path}})
    for c, m in (("cfg-a", "bench-a"), ("cfg-b", "bench-b")):
        expect_ok(admin, report, "CreateEndpointConfig", {
            "EndpointConfigName": c,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": m}]})
    names = (["list-%03d" % i for i in range(n_list)]
             + ["stable-%d" % i for i in range(n_stable)] + ["upd"])
    for n in names:
        expect_ok(admin, report, "CreateEndpoint", {"EndpointName": n, "EndpointConfigName": "cfg-a"})
    done, _ = wait_states(admin, names, ("InService", "cfg-a"), lambda: False, report)
    for n in ["stable-%d" % i for i in range(n_stable)] + ["upd"]:
        probe(data, report, n, "cfg-a")
    if report.errors or len(done) != len(names):
        sys.stderr.write("admin-load setup: %d errors:\n  %s\n"
                         % (report.errors, "\n  ".join(report.kept)))
        return 1
    print("%d endpoints InService in %.2f s (%d admin calls)"
          % (len(names), time.monotonic() - t0, admin.calls))
    return 0


def cmd_churn(admin_port, data_port, count, stop_file, out):
    admin, data, report = Admin(admin_port), Data(data_port), Report()
    stop = lambda: os.path.exists(stop_file)  # noqa: E731
    names = ["churn-%03d" % i for i in range(count)]
    lat = {"create": [], "update": [], "delete": []}
    rounds = 0
    t0 = time.monotonic()
    while not stop():
        # Creates, then updates, then deletes: each phase issues its call for
        # all <count> endpoints, then waits for all of them.
        for n in names:
            expect_ok(admin, report, "CreateEndpoint", {"EndpointName": n, "EndpointConfigName": "cfg-a"})
        done, full = wait_states(admin, names, ("InService", "cfg-a"), stop, report)
        lat["create"] += done.values()
        if not full:
            break
        for n in names:
            probe(data, report, n, "cfg-a")
        for n in names:
            expect_ok(admin, report, "UpdateEndpoint", {"EndpointName": n, "EndpointConfigName": "cfg-b"})
        done, full = wait_states(admin, names, ("InService", "cfg-b"), stop, report)
        lat["update"] += done.values()
        if not full:
            break
        for n in names:
            probe(data, report, n, "cfg-b")
        for n in names:
            expect_ok(admin, report, "DeleteEndpoint", {"EndpointName": n})
        done, full = wait_states(admin, names, ("gone", None), stop, report)
        lat["delete"] += done.values()
        if not full:
            break
        for n in names:
            probe(data, report, n, None)
        rounds += 1
        if report.errors:
            break
    elapsed = time.monotonic() - t0
    teardown(admin, names, report)
    ops = sum(len(v) for v in lat.values())
    t = os.times()
    res = {"seconds": elapsed, "cpu_s": t.user + t.system, "rounds": rounds, "ops": ops, "ops_per_s": ops / elapsed,
           "creates": len(lat["create"]), "updates": len(lat["update"]),
           "deletes": len(lat["delete"]), "admin_calls": admin.calls,
           "admin_calls_per_s": admin.calls / elapsed, "reconnects": admin.reconnects,
           "latency": {k: quantiles(v) for k, v in lat.items()}, "raw": lat,
           "errors": report.errors, "error_list": report.kept}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


def cmd_update(admin_port, data_port, name, stop_file, out):
    admin, data, report = Admin(admin_port), Data(data_port), Report()
    stop = lambda: os.path.exists(stop_file)  # noqa: E731
    lat = []
    status, parsed, raw = admin.call("DescribeEndpoint", {"EndpointName": name})
    if status != 200 or not isinstance(parsed, dict) or parsed.get("EndpointStatus") != "InService":
        sys.stderr.write("admin-load update: %s is not InService: %d %s\n" % (name, status, raw[:300]))
        return 1
    cur = parsed.get("EndpointConfigName")
    t0 = time.monotonic()
    while not stop() and not report.errors:
        nxt = "cfg-b" if cur == "cfg-a" else "cfg-a"
        if not expect_ok(admin, report, "UpdateEndpoint", {"EndpointName": name, "EndpointConfigName": nxt}):
            break
        done, full = wait_states(admin, [name], ("InService", nxt), stop, report)
        if not full:
            break
        if name not in done:
            break
        lat.append(done[name])
        cur = nxt
        probe(data, report, name, cur)
    elapsed = time.monotonic() - t0
    # An update cut short by STOP_FILE: let it finish (on either
    # configuration), so that the next phase starts from InService.
    settle(admin, name, report)
    t = os.times()
    res = {"seconds": elapsed, "cpu_s": t.user + t.system, "updates": len(lat), "updates_per_s": len(lat) / elapsed,
           "admin_calls": admin.calls, "reconnects": admin.reconnects,
           "latency": quantiles(lat), "raw": lat, "errors": report.errors,
           "error_list": report.kept}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


def main(argv):
    cmds = {"setup": (8, cmd_setup, (int, int, str, str, int, int)),
            "churn": (7, cmd_churn, (int, int, int, str, str)),
            "update": (7, cmd_update, (int, int, str, str, str))}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) != cmds[argv[1]][0]:
        sys.stderr.write(__doc__)
        return 2
    _, fn, types = cmds[argv[1]]
    try:
        args = [t(a) for t, a in zip(types, argv[2:])]
    except ValueError:
        sys.stderr.write(__doc__)
        return 2
    return fn(*args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
