"""A second adversarial review of the admin API (src/admin/*, the dynamic
endpoints of src/gateway.c), after the first round's fixes: does each fix
hold under variations, and what the first round did not try.

- /readyz: a Failed endpoint (created here, or read at start) must not make
  it degraded; an update that failed and was rolled back leaves the old
  variants serving: ready again once the store says InService.
- retry backoff: an endpoint InService in the store whose model file is
  broken on this host: the retries back off (CPU, log lines, jobs), and
  the gateway serves it once the file is good again.
- DATA_DIR/models: nothing left behind by deleted bring-your-own serve
  programs (with and without ModelDataUrl) or by failed deployments.
- the loader thread: deletions of endpoints whose (slow) model load is
  still queued must not delay a later deployment behind the dead loads,
  nor SIGTERM.
- /metrics stays strict Prometheus text (every sample unique by name and
  labels) while an update's old and new variants (same variant name)
  coexist with requests in flight.
- 500 endpoints created and deleted: the gateway's RSS.
- two gateways on one Redis: delete via B while A holds requests; re-create
  the same name while the first life's requests are still in flight on A
  (the new endpoint must survive, serve, and its delete must drain);
  simultaneous updates via A and B; a Redis restart during a deployment;
  a Redis that hangs (SIGSTOP): ServiceUnavailable, not calls held forever;
  the gateway stopped past the store's reply watch: nothing dropped.
- SIGTERM while Creating / Deleting, then restart: the right final state.

Run with /usr/bin/python3 from tests/integration; < 120 s."""

import http.client
import json
import os
import shutil
import signal
import socket
import tarfile
import threading
import time
import urllib.request

from iglib import (AdminGateway, RedisServer, check, check_eq, finish, rss_kb, sigv4_headers,
                   uses_asan)
from test_admin_adversary import (KM2D_PATH, WANT, SlowContainer, call, config,
                                  describe, es_payload, invoke, log, model, ok, procs_below,
                                  section, tmp, wait_ep)

BYO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "byo")
BYO = os.path.abspath(os.path.join(BYO_DIR, "serve"))
BAD_PATH = os.path.join(tmp, "bad.json")
with open(BAD_PATH, "w") as f:
    f.write('{"algorithm": "kmeans", "feature_dim": 2, "centroids": [[1, 2], [3]]}')
BIG_PATH = os.path.join(tmp, "big.json")


def make_big(n=300, d=6000):
    """A kmeans model.json that takes the loader a few seconds to parse."""
    with open(BIG_PATH, "w") as f:
        f.write('{"algorithm": "kmeans", "feature_dim": %d, "centroids": [' % d)
        row = "[" + ",".join(["1.25"] * d) + "]"
        f.write(",".join([row] * n))
        f.write("]}")


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError as e:
        return 0, {"error": repr(e)}


def readyz_wait(gw, status, timeout, step=0.1):
    """/readyz polled until its status is <status> or <timeout> s pass:
    the last (HTTP status, body)."""
    t = time.time()
    st, js = readyz(gw)
    while js.get("status") != status and time.time() - t < timeout:
        time.sleep(step)
        st, js = readyz(gw)
    return st, js


def metrics(gw):
    with urllib.request.urlopen(gw.url + "/metrics", timeout=5) as r:
        return r.read().decode()


def strict_prom(text):
    """-> list of problems: sample lines not unique by name+labels, samples
    without a # TYPE, malformed lines."""
    bad, seen, typed = [], set(), set()
    for ln in text.splitlines():
        if not ln:
            continue
        if ln.startswith("# TYPE "):
            typed.add(ln.split()[2])
            continue
        if ln.startswith("#"):
            continue
        if "{" in ln:
            name, rest = ln.split("{", 1)
            labels, value = rest.rsplit("}", 1)
            lab = tuple(sorted(p for p in labels.split('",') if p))
        else:
            name, value = ln.split(" ", 1)
            lab = ()
        try:
            float(value.strip().split()[0])
        except (ValueError, IndexError):
            bad.append("bad value: " + ln)
        key = (name, lab)
        if key in seen:
            bad.append("duplicate: " + ln)
        seen.add(key)
        base = name
        for suf in ("_bucket", "_sum", "_count"):
            if base.endswith(suf) and base[:-len(suf)] in typed:
                base = base[:-len(suf)]
        if base not in typed:
            bad.append("no # TYPE: " + ln)
    return bad


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def models_left(gw):
    d = os.path.join(gw.data_dir, "models")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def models_until(gw, ok, timeout=5):
    """DATA_DIR/models once ok(listing) holds, or after <timeout> s: a
    removed directory is renamed at once and removed on the loader thread
    (test_review_adm 1), which a loaded machine may take a moment over."""
    end = time.time() + timeout
    while not ok(models_left(gw)) and time.time() < end:
        time.sleep(0.05)
    return models_left(gw)


def ep_create(gw, name, cfg):
    return call(gw, "CreateEndpoint", {"EndpointName": name, "EndpointConfigName": cfg})


# ---- sections ---------------------------------------------------------------

def dup_target(gw):
    """A captured signed DescribeEndpoint with a second, unsigned
    X-Amz-Target: SageMaker.DeleteEndpoint before or after the signed one."""
    model(gw, "dt-m", "kmeans", "file://" + KM2D_PATH)
    config(gw, "dt-c", [("AllTraffic", "dt-m", 1.0)])
    ep_create(gw, "Dt", "dt-c")
    wait_ep(gw, "Dt", ("InService",), 10, "dup target")
    body = json.dumps({"EndpointName": "Dt"}).encode()
    for order in ("after", "before"):
        h = sigv4_headers("127.0.0.1:%d" % gw.admin_port, "SageMaker.DescribeEndpoint", body)
        lines = ["POST / HTTP/1.1"]
        for k, v in h.items():
            if k == "X-Amz-Target" and order == "before":
                lines.append("X-Amz-Target: SageMaker.DeleteEndpoint")
            lines.append("%s: %s" % (k, v))
            if k == "X-Amz-Target" and order == "after":
                lines.append("X-Amz-Target: SageMaker.DeleteEndpoint")
        lines += ["Content-Length: %d" % len(body), "Connection: close"]
        s = socket.create_connection(("127.0.0.1", gw.admin_port), timeout=5)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        check(got.startswith(b"HTTP/1.1 4"), "dup_target: a second unsigned X-Amz-Target %s the "
              "signed one is refused: %r" % (order, got[:120]))
        check_eq((describe(gw, "Dt") or {}).get("EndpointStatus"), "InService",
                 "dup_target: the endpoint is not Deleting")
    call(gw, "DeleteEndpoint", {"EndpointName": "Dt"})
    wait_ep(gw, "Dt", ("gone",), 10, "dup target: delete")


def readyz_states(gw):
    """/readyz with a Failed endpoint, after a rolled-back update, after a
    restart with a Failed endpoint in the store."""
    st, js = readyz(gw)
    check_eq((st, js.get("status")), (200, "ready"), "readyz: fresh gateway")
    model(gw, "rz-bad-m", "kmeans", "file://" + BAD_PATH)
    config(gw, "rz-bad-c", [("AllTraffic", "rz-bad-m", 1.0)])
    model(gw, "rz-ok-m", "kmeans", "file://" + KM2D_PATH)
    config(gw, "rz-ok-c", [("AllTraffic", "rz-ok-m", 1.0)])
    ep_create(gw, "RzFailed", "rz-bad-c")
    d = wait_ep(gw, "RzFailed", ("Failed",), 15, "readyz: failed create")
    time.sleep(1.5)  # past the first retry timer (1 s)
    st, js = readyz(gw)
    check_eq((st, js.get("status")), (200, "ready"),
             "readyz_failed_endpoint: a Failed endpoint is nobody's to serve (%r)" % (js,))
    ep_create(gw, "RzRoll", "rz-ok-c")
    wait_ep(gw, "RzRoll", ("InService",), 15, "readyz: RzRoll")
    call(gw, "UpdateEndpoint", {"EndpointName": "RzRoll", "EndpointConfigName": "rz-bad-c"})
    d = None
    t = time.time()
    while time.time() - t < 15:
        d = describe(gw, "RzRoll")
        if d and d.get("EndpointStatus") == "InService" and d.get("FailureReason"):
            break
        time.sleep(0.05)
    check(d and d.get("EndpointStatus") == "InService" and d.get("EndpointConfigName") == "rz-ok-c",
          "readyz: a failed update rolls back to InService on rz-ok-c: %r" % (d,))
    st, body = invoke(gw.port, "RzRoll")[0::2]
    check_eq((st, body), (200, WANT["Blue"].encode()), "readyz: the rolled-back endpoint serves the old model")
    samples = []
    for _ in range(8):  # 4 s: past the 1 s, 2 s retry timers
        samples.append(readyz(gw))
        time.sleep(0.5)
    st, js = samples[-1]
    check_eq((st, js.get("status")), (200, "ready"),
             "readyz_after_rolled_back_update: the old variants serve, nothing is retried; "
             "/readyz still says %r (samples: %r)" % (js, [s[1].get("status") for s in samples]))
    log("readyz after rollback: %r" % (js,))
    gw.restart()
    st, js = readyz_wait(gw, "ready", 3)
    check_eq((st, js.get("status")), (200, "ready"),
             "readyz_failed_after_restart: a Failed endpoint read at start (%r)" % (js,))
    call(gw, "DeleteEndpoint", {"EndpointName": "RzFailed"})
    call(gw, "DeleteEndpoint", {"EndpointName": "RzRoll"})
    wait_ep(gw, "RzFailed", ("gone",), 10, "readyz: delete RzFailed")
    wait_ep(gw, "RzRoll", ("gone",), 10, "readyz: delete RzRoll")


def retry_backoff(gw):
    """InService in the store, broken on this host (the model file replaced
    after the deployment, the gateway restarted): the retries back off."""
    path = os.path.join(tmp, "retry.json")
    shutil.copy(KM2D_PATH, path)
    model(gw, "rt-m", "kmeans", "file://" + path)
    config(gw, "rt-c", [("AllTraffic", "rt-m", 1.0)])
    ep_create(gw, "Retry", "rt-c")
    wait_ep(gw, "Retry", ("InService",), 15, "retry: create")
    shutil.copy(BAD_PATH, path)
    gw.restart()
    pid = gw.proc.pid
    time.sleep(0.5)
    st, js = readyz(gw)
    check(st == 200 and js.get("status") == "degraded" and "Retry" in js.get("reason", ""),
          "retry: /readyz degraded naming Retry: %d %r" % (st, js))
    log_before = len(gw.stderr())
    c0, fds0 = cpu_ticks(pid), len(os.listdir("/proc/%d/fd" % pid))
    time.sleep(4.5)
    c1, fds1 = cpu_ticks(pid), len(os.listdir("/proc/%d/fd" % pid))
    grown = gw.stderr()[log_before:]
    tries = grown.count("deploying again in")
    log("retry: %d retries in 4.5 s, %d cpu ticks, fds %d -> %d, log +%d bytes, models/ %r"
        % (tries, c1 - c0, fds0, fds1, len(grown), models_left(gw)))
    check(tries <= 3, "retry_backoff: at most 3 retries in 4.5 s (1,2 s backoff): %d" % tries)
    check(c1 - c0 < 100, "retry_backoff: the gateway idles while retrying: %d ticks in 4.5 s"
          % (c1 - c0))
    check(fds1 <= fds0 + 2, "retry_backoff: no fd leak: %d -> %d" % (fds0, fds1))
    left = models_until(gw, lambda ls: len(ls) <= 1)
    check(len(left) <= 1, "retry_backoff: DATA_DIR/models bounded: %r" % left)
    shutil.copy(KM2D_PATH, path)
    t = time.time()
    served = False
    while time.time() - t < 12 and not served:
        st, body = invoke(gw.port, "Retry")[0::2]
        served = st == 200 and body == WANT["Blue"].encode()
        time.sleep(0.2)
    check(served, "retry: served once the file is good again (within the 8 s backoff)")
    st, js = readyz(gw)
    check_eq(js.get("status"), "ready", "retry: ready again once served")
    call(gw, "DeleteEndpoint", {"EndpointName": "Retry"})
    wait_ep(gw, "Retry", ("gone",), 10, "retry: delete")
    # the same with a serve program that exits at start on this host (its
    # scale.txt broken after the deployment): children, logs, model dirs
    arch = os.path.join(tmp, "retry-byo.tar.gz")

    def pack(text):
        sc = os.path.join(tmp, "retry-scale.txt")
        with open(sc, "w") as f:
            f.write(text)
        with tarfile.open(arch + ".new", "w:gz") as t:
            t.add(sc, arcname="scale.txt")
        os.replace(arch + ".new", arch)
    pack("2\n")
    model(gw, "rt-byo", "file://" + BYO, "file://" + arch)
    config(gw, "rt-byo-c", [("AllTraffic", "rt-byo", 1.0)])
    ep_create(gw, "RetryByo", "rt-byo-c")
    wait_ep(gw, "RetryByo", ("InService",), 20, "retry: RetryByo")
    pack("not a number\n")
    gw.restart()
    pid = gw.proc.pid
    logf = os.path.join(gw.data_dir, "logs", "retrybyo.AllTraffic.log")
    time.sleep(1.0)
    sz0 = os.path.getsize(logf) if os.path.exists(logf) else 0
    kids = []
    t = time.time()
    while time.time() - t < 4:
        kids.append(procs_below(pid, "tests/byo/serve", leaders=True))
        time.sleep(0.1)
    sz1 = os.path.getsize(logf) if os.path.exists(logf) else 0
    st, js = readyz(gw)
    live = [k for k in kids if len([p for p, s in k if s != "Z"]) > 1]
    log("retry byo: children seen %r, log %d -> %d bytes, models/ %r, readyz %r"
        % (sorted(set(p for k in kids for p in k)), sz0, sz1, models_left(gw), js.get("status")))
    # One serve program at a time: counted by process group (the gateway
    # starts each in a group of its own). Counting every process whose
    # cmdline names the script saw two or three at once in CI: the pyenv
    # shim that `#!/usr/bin/env python3` finds first on PATH forks about 40
    # bash subshells that carry the script's name, all in that one group.
    check(not live, "retry_backoff_byo: at most one live serve child at a time: %r" % live[:3])
    if live:
        log("retry byo: the gateway's log of it:\n" + "\n".join(
            ln for ln in gw.stderr().splitlines() if "RetryByo" in ln or "retrybyo" in ln))
    check(sz1 - sz0 < 20000, "retry_backoff_byo: the serve log grows slowly: %d bytes in 4 s"
          % (sz1 - sz0))
    left = models_until(gw, lambda ls: len(ls) <= 1)
    check(len(left) <= 1, "models_dir_leak_restart: models/ holds the dirs of earlier "
          "gateway processes (named by pid, never removed): %r" % left)
    check_eq(js.get("status"), "degraded", "retry byo: /readyz degraded meanwhile")
    pack("2\n")
    t = time.time()
    served = False
    while time.time() - t < 12 and not served:
        st, body = invoke(gw.port, "RetryByo", body="1,2\n", accept="text/csv")[0::2]
        served = (st, body) == (200, b"6.0\n")
        time.sleep(0.2)
    check(served, "retry byo: served once scale.txt is good again")
    call(gw, "DeleteEndpoint", {"EndpointName": "RetryByo"})
    wait_ep(gw, "RetryByo", ("gone",), 10, "retry: delete RetryByo")


def flip_flop(gw):
    """UpdateEndpoint A -> B -> A as fast as the status allows, 6 times,
    a client invoking all along: every answer one of the two models'."""
    green = os.path.join(tmp, "green.json")
    model(gw, "ff-a", "kmeans", "file://" + KM2D_PATH)
    model(gw, "ff-b", "kmeans", "file://" + green)
    config(gw, "ff-ca", [("AllTraffic", "ff-a", 1.0)])
    config(gw, "ff-cb", [("AllTraffic", "ff-b", 1.0)])
    ep_create(gw, "Ff", "ff-ca")
    wait_ep(gw, "Ff", ("InService",), 15, "flip: Ff")
    stop = threading.Event()
    res = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        while not stop.is_set():
            try:
                st, h, body = invoke(gw.port, "Ff", conn=c)
                res.append((st, body.decode(), h.get("x-amzn-invoked-production-variant")))
            except (OSError, http.client.HTTPException) as e:
                res.append((repr(e), "", None))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        c.close()
    ths = [threading.Thread(target=client) for _ in range(2)]
    for th in ths:
        th.start()
    cfg = "ff-ca"
    for i in range(6):
        cfg = "ff-cb" if cfg == "ff-ca" else "ff-ca"
        t = time.time()
        while time.time() - t < 10:
            st, et, msg, _ = call(gw, "UpdateEndpoint", {"EndpointName": "Ff",
                                                         "EndpointConfigName": cfg})
            if st == 200:
                break
            time.sleep(0.01)
        check(st == 200, "flip: update %d to %s: %d %s %s" % (i, cfg, st, et, msg))
        wait_ep(gw, "Ff", ("InService",), 10, "flip: update %d" % i)
    time.sleep(0.3)
    stop.set()
    for th in ths:
        th.join(10)
    bad = [r for r in res if r[0] != 200 or r[1] not in (WANT["Blue"], WANT["Green"])]
    check(res and not bad, "flip_flop: %d answers across 6 updates all 200 from A or B: %r"
          % (len(res), bad[:3]))
    d = describe(gw, "Ff")
    check_eq((d or {}).get("EndpointConfigName"), cfg, "flip: ends on the last config")
    st, body = invoke(gw.port, "Ff")[0::2]
    check_eq(body.decode(), WANT["Blue"] if cfg == "ff-ca" else WANT["Green"],
             "flip: serves the last config's model")
    call(gw, "DeleteEndpoint", {"EndpointName": "Ff"})
    wait_ep(gw, "Ff", ("gone",), 10, "flip: delete")


def models_dir(gw):
    """Bring-your-own serve programs (ModelDataUrl tar.gz, and none), a
    failing archive: after the deletes DATA_DIR/models is empty."""
    arch = os.path.join(tmp, "byo-model.tar.gz")
    sc = os.path.join(tmp, "scale.txt")
    with open(sc, "w") as f:
        f.write("2\n")
    with tarfile.open(arch, "w:gz") as t:
        t.add(sc, arcname="scale.txt")
    badarch = os.path.join(tmp, "bad-model.tar.gz")
    with tarfile.open(badarch, "w:gz") as t:  # two *.json, no model.json: refused after unpack
        t.add(KM2D_PATH, arcname="a.json")
        t.add(KM2D_PATH, arcname="b.json")
    before = models_left(gw)
    model(gw, "md-byo-data", "file://" + BYO, "file://" + arch)
    model(gw, "md-byo-none", "file://" + BYO)
    model(gw, "md-badarch", "kmeans", "file://" + badarch)
    config(gw, "md-c1", [("AllTraffic", "md-byo-data", 1.0)])
    config(gw, "md-c2", [("AllTraffic", "md-byo-none", 1.0)])
    config(gw, "md-c3", [("AllTraffic", "md-badarch", 1.0)])
    for n, c in (("MdData", "md-c1"), ("MdNone", "md-c2"), ("MdBad", "md-c3")):
        ep_create(gw, n, c)
    wait_ep(gw, "MdData", ("InService",), 20, "models: MdData")
    wait_ep(gw, "MdNone", ("InService",), 20, "models: MdNone")
    wait_ep(gw, "MdBad", ("Failed",), 20, "models: MdBad")
    st, body = invoke(gw.port, "MdData", body="1,2\n", accept="text/csv")[0::2]
    check_eq((st, body), (200, b"6.0\n"), "models: the BYO serve program reads scale.txt")
    during = models_left(gw)
    for n in ("MdData", "MdNone", "MdBad"):
        call(gw, "DeleteEndpoint", {"EndpointName": n})
    for n in ("MdData", "MdNone", "MdBad"):
        wait_ep(gw, n, ("gone",), 10, "models: delete " + n)
    t = time.time()
    while time.time() - t < 3 and procs_below(gw.proc.pid, "tests/byo/serve"):
        time.sleep(0.1)
    check_eq(procs_below(gw.proc.pid, "tests/byo/serve"), [], "models: serve children stopped")
    left = [x for x in models_until(gw, lambda ls: all(x in before for x in ls))
            if x not in before]
    log("models/: before %r, while serving %r, after delete %r" % (before, during, left))
    check_eq(left, [], "models_dir_leak: DATA_DIR/models after the BYO endpoints are deleted "
             "and a failed archive")


def loader_queue(gw):
    """Slow loads (a 45 MB model.json) queued on the one loader thread:
    deleting their endpoints must not leave a new deployment waiting behind
    them; SIGTERM with loads queued exits fast."""
    make_big()
    model(gw, "lq-big", "kmeans", "file://" + BIG_PATH)
    config(gw, "lq-big-c", [("AllTraffic", "lq-big", 1.0)])
    model(gw, "lq-ok", "kmeans", "file://" + KM2D_PATH)
    config(gw, "lq-ok-c", [("AllTraffic", "lq-ok", 1.0)])
    t = time.time()
    ep_create(gw, "LqOne", "lq-big-c")
    wait_ep(gw, "LqOne", ("InService", "Failed"), 40, "loader: one big load")
    one = time.time() - t
    log("loader: one big model load takes %.2f s" % one)
    call(gw, "DeleteEndpoint", {"EndpointName": "LqOne"})
    wait_ep(gw, "LqOne", ("gone",), 10, "loader: delete LqOne")
    names = ["LqSlow%d" % i for i in range(4)]
    for n in names:
        ep_create(gw, n, "lq-big-c")
    time.sleep(0.2)
    for n in names:
        call(gw, "DeleteEndpoint", {"EndpointName": n})
    for n in names:
        wait_ep(gw, n, ("gone",), 10, "loader: delete " + n)
    t = time.time()
    ep_create(gw, "LqFast", "lq-ok-c")
    wait_ep(gw, "LqFast", ("InService",), 40, "loader: fast after deletes")
    took = time.time() - t
    log("loader: a small model after 4 deleted big loads: InService in %.2f s" % took)
    check(took < max(1.5, one), "loader_queue_cancel: a deployment after 4 endpoints whose loads "
          "were still queued were deleted waits %.1f s (one big load: %.1f s): the dead loads "
          "still run on the one loader thread" % (took, one))
    call(gw, "DeleteEndpoint", {"EndpointName": "LqFast"})
    wait_ep(gw, "LqFast", ("gone",), 10, "loader: delete LqFast")
    # SIGTERM with loads queued (endpoints Creating and deleted)
    for n in names:
        ep_create(gw, n, "lq-big-c")
    time.sleep(0.2)
    for n in names[:2]:
        call(gw, "DeleteEndpoint", {"EndpointName": n})
    t = time.time()
    code = gw.stop(timeout=60)
    took = time.time() - t
    log("loader: SIGTERM with 4 big loads queued: exit %d after %.2f s" % (code, took))
    check(code == 0 and took < 1.5 * one + 0.5, "loader_sigterm: SIGTERM with 4 big loads queued "
          "(2 of them deleted) exits 0 within the one load in progress (%.1f s): %d after %.1f s "
          "(the loader runs every queued load first)" % (one, code, took))
    gw.start()
    for n in names:
        call(gw, "DeleteEndpoint", {"EndpointName": n})
    for n in names:
        wait_ep(gw, n, ("gone",), 40, "loader: cleanup " + n)


def metrics_overlap(gw):
    """An update (same variant name) with requests in flight on the old
    variant: /metrics strict, sampled throughout; streams answered."""
    slow = SlowContainer(1.5)
    try:
        ok(gw, "CreateModel", {"ModelName": "mo-slow", "PrimaryContainer": {"Image": slow.url}},
           "metrics: model")
        model(gw, "mo-km", "kmeans", "file://" + KM2D_PATH)
        config(gw, "mo-c1", [("AllTraffic", "mo-slow", 1.0)])
        config(gw, "mo-c2", [("AllTraffic", "mo-km", 1.0)])
        config(gw, "mo-c3", [("AllTraffic", "mo-slow", 1.0), ("Second", "mo-km", 0.0)])
        ep_create(gw, "Mo", "mo-c1")
        wait_ep(gw, "Mo", ("InService",), 15, "metrics: Mo")
        out = []

        def one(stream, path=None):
            try:
                if path:
                    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
                    c.request("POST", path, body="1,2\n",
                              headers={"Content-Type": "text/csv", "Accept": "text/csv"})
                    r = c.getresponse()
                    out.append(("transform", r.status, r.read()))
                    c.close()
                    return
                st, h, body = invoke(gw.port, "Mo", body="1,2\n", stream=stream, accept="text/csv")
                out.append(("stream" if stream else "unary", st,
                            es_payload(body) if stream else body))
            except (OSError, http.client.HTTPException) as e:
                out.append(("err", repr(e), b""))
        ths = [threading.Thread(target=one, args=(s,)) for s in (False, True, False, True)]
        ths.append(threading.Thread(target=one, args=(False, "/transform/Mo")))
        for th in ths:
            th.start()
        time.sleep(0.3)
        call(gw, "UpdateEndpoint", {"EndpointName": "Mo", "EndpointConfigName": "mo-c2"})
        problems = []
        t = time.time()
        while time.time() - t < 1.2:
            problems += strict_prom(metrics(gw))
            time.sleep(0.05)
        for th in ths:
            th.join(20)
        check_eq(problems[:5], [], "metrics_strict: /metrics while an old and a new AllTraffic "
                 "variant coexist")
        check(len(out) == 5 and all(o[1] == 200 and o[2] == b"3.0\n" for o in out),
              "metrics: requests in flight across the update answered by the old variant: %r"
              % out)
        wait_ep(gw, "Mo", ("InService",), 10, "metrics: updated")
        # streams during a delete of a two-variant endpoint
        call(gw, "UpdateEndpoint", {"EndpointName": "Mo", "EndpointConfigName": "mo-c3"})
        time.sleep(0.2)
        wait_ep(gw, "Mo", ("InService",), 10, "metrics: updated to 2 variants")
        out.clear()
        ths = [threading.Thread(target=one, args=(s,)) for s in (True, True)]
        ths.append(threading.Thread(target=one, args=(False, "/transform/Mo")))
        # weight 0 on Second: every request goes to the slow AllTraffic
        for th in ths:
            th.start()
        time.sleep(0.3)
        call(gw, "DeleteEndpoint", {"EndpointName": "Mo"})
        problems = []
        t = time.time()
        while time.time() - t < 1.0:
            problems += strict_prom(metrics(gw))
            time.sleep(0.05)
        for th in ths:
            th.join(20)
        check_eq(problems[:5], [], "metrics_strict: /metrics during a delete with streams open")
        check(len(out) == 3 and all(o[1] == 200 for o in out),
              "metrics: streams in flight across a DeleteEndpoint answered: %r" % out)
        wait_ep(gw, "Mo", ("gone",), 10, "metrics: deleted")
    finally:
        slow.close()


def rss_cycles(gw, rounds=10, per=50):
    """rounds x per endpoints created (InService) and deleted: RSS."""
    model(gw, "rss-m", "kmeans", "file://" + KM2D_PATH)
    config(gw, "rss-c", [("AllTraffic", "rss-m", 1.0)])
    pid = gw.proc.pid
    rss = []

    def wait_all(names, want):
        left = set(names)
        t = time.time()
        while left and time.time() - t < 30:
            st, et, msg, js = call(gw, "ListEndpoints", {"MaxResults": 100,
                                                         "NameContains": "rss-e"})
            have = {e["EndpointName"]: e["EndpointStatus"]
                    for e in (js or {}).get("Endpoints", [])}
            for n in list(left):
                s = have.get(n, "gone")
                if s == want:
                    left.discard(n)
            if left:
                time.sleep(0.05)
        return left

    stuck = []
    for r in range(rounds):
        names = ["rss-e%d-%d" % (r, i) for i in range(per)]
        for n in names:
            ep_create(gw, n, "rss-c")
        stuck += list(wait_all(names, "InService"))
        for n in names:
            call(gw, "DeleteEndpoint", {"EndpointName": n})
        stuck += list(wait_all(names, "gone"))
        rss.append(rss_kb(pid))
    log("rss: %d cycles, RSS kB per round %r" % (rounds * per, rss))
    check_eq(stuck[:5], [], "rss: every endpoint InService then gone")
    grow = rss[-1] - rss[1]
    if uses_asan(pid):
        log("rss: ASan's quarantine keeps freed memory: no bound")
        return
    check(grow < 4096, "rss_cycles: %d create+delete cycles grow RSS by %d kB after the second "
          "round (%r)" % ((rounds - 2) * per, grow, rss))


def two_gateways(ga, gb):
    """A and B on one external Redis."""
    slow = SlowContainer(3.0)
    # the concurrent updates' model: answers at once, /ping after 1.2 s, so
    # that each update stays Updating for over a second (the two calls
    # overlap it whatever the threads' start-up skew on a loaded machine)
    race = SlowContainer(0.0, ping_delay=1.2)
    try:
        ok(ga, "CreateModel", {"ModelName": "tg-slow", "PrimaryContainer": {"Image": slow.url}},
           "two: model")
        ok(ga, "CreateModel", {"ModelName": "tg-race", "PrimaryContainer": {"Image": race.url}},
           "two: race model")
        model(ga, "tg-km", "kmeans", "file://" + KM2D_PATH)
        config(ga, "tg-c1", [("AllTraffic", "tg-slow", 1.0)])
        config(ga, "tg-c2", [("AllTraffic", "tg-km", 1.0)])
        config(ga, "tg-u1", [("AllTraffic", "tg-race", 1.0)])
        config(ga, "tg-u2", [("Other", "tg-race", 1.0)])
        ep_create(ga, "Tg", "tg-c1")
        wait_ep(ga, "Tg", ("InService",), 15, "two: Tg")
        time.sleep(0.3)
        out = []

        def one(gw, stream):
            try:
                st, h, body = invoke(gw.port, "Tg", body="1,2\n", stream=stream, accept="text/csv")
                out.append((st, es_payload(body) if stream else body))
            except (OSError, http.client.HTTPException) as e:
                out.append((repr(e), b""))
        ths = [threading.Thread(target=one, args=(ga, s)) for s in (False, True)]
        for th in ths:
            th.start()
        time.sleep(0.4)
        t_del = time.time()
        call(gb, "DeleteEndpoint", {"EndpointName": "Tg"})
        d = describe(ga, "Tg")
        log("two: right after delete via B: %r" % ((d or {}).get("EndpointStatus"),))
        wait_ep(ga, "Tg", ("gone",), 10, "two: Tg deleted")
        gone_after = time.time() - t_del
        log("two: Tg gone %.2f s after the delete via B (A's requests need ~2.6 s more)"
            % gone_after)
        check(gone_after > 2.0, "two_gw_delete_drain: the doc stays Deleting until the requests "
              "A holds are answered (gone after %.2f s, A's requests needed ~2.6 s: B, holding "
              "nothing, deleted it)" % gone_after)
        # same name again while A's first-life requests are in flight
        st, et, msg, _ = ep_create(gb, "Tg", "tg-c2")
        check(st == 200, "two: re-create Tg via B: %d %s %s" % (st, et, msg))
        wait_ep(gb, "Tg", ("InService",), 15, "two: Tg re-created")
        t = time.time()
        served = False
        while time.time() - t < 5 and not served:
            st, body = invoke(ga.port, "Tg")[0::2]
            served = (st, body) == (200, WANT["Blue"].encode())
            time.sleep(0.05)
        check(served, "two: A serves the re-created Tg")
        for th in ths:
            th.join(20)
        check(len(out) == 2 and all(o == (200, b"3.0\n") for o in out),
              "two: A's first-life requests answered: %r" % out)
        time.sleep(1.0)
        d = describe(ga, "Tg")
        check_eq((d or {}).get("EndpointStatus"), "InService",
                 "two_recreate_survives: the re-created Tg after the first life's drains")
        # simultaneous updates via A and B
        res = []

        def upd(gw, cfg):
            res.append((cfg,) + call(gw, "UpdateEndpoint", {"EndpointName": "Tg",
                                                             "EndpointConfigName": cfg})[:3])
        u = [threading.Thread(target=upd, args=(ga, "tg-u2")),
             threading.Thread(target=upd, args=(gb, "tg-u1"))]
        for th in u:
            th.start()
        for th in u:
            th.join(20)
        wins = [r for r in res if r[1] == 200]
        check(len(wins) == 1 and all(r[1] == 400 and r[2] == "ValidationException"
                                     for r in res if r[1] != 200),
              "two_concurrent_update: one wins, the other a clean ValidationException: %r" % res)
        d = wait_ep(ga, "Tg", ("InService",), 15, "two: after concurrent updates")
        want_cfg = wins[0][0] if wins else None
        check_eq((d or {}).get("EndpointConfigName"), want_cfg, "two: the winner's config")
        time.sleep(0.5)
        for gw, nm in ((ga, "A"), (gb, "B")):
            st, h, body = invoke(gw.port, "Tg", body="1,2\n", accept="text/csv")
            check_eq(h.get("x-amzn-invoked-production-variant"),
                     {"tg-u2": "Other", "tg-u1": "AllTraffic"}.get(want_cfg),
                     "two: gateway %s serves the winner's variant" % nm)
        call(ga, "DeleteEndpoint", {"EndpointName": "Tg"})
        wait_ep(ga, "Tg", ("gone",), 10, "two: Tg deleted again")
    finally:
        slow.close()
        race.close()


def redis_restart(ga, gb, redis):
    """Redis stopped and started while a deployment is in progress."""
    make_big() if not os.path.exists(BIG_PATH) else None
    model(ga, "rr-big", "kmeans", "file://" + BIG_PATH)
    config(ga, "rr-c", [("AllTraffic", "rr-big", 1.0)])
    ep_create(ga, "Rr", "rr-c")
    time.sleep(0.3)
    redis.stop()
    time.sleep(1.0)
    redis.start()
    d = wait_ep(ga, "Rr", ("InService", "Failed"), 40, "redis restart: Rr")
    check_eq((d or {}).get("EndpointStatus"), "InService",
             "redis_restart: a deployment in progress across a Redis restart ends InService")
    time.sleep(0.5)
    for gw, nm in ((ga, "A"), (gb, "B")):
        st = invoke(gw.port, "Rr", body=",".join(["1"] * 6000) + "\n")[0]
        check_eq(st, 200, "redis restart: gateway %s serves Rr" % nm)
        # the store's reconnection backs off (up to 2 s, jittered): ready within 5 s
        st, js = readyz_wait(gw, "ready", 5)
        check_eq(js.get("status"), "ready", "redis restart: %s ready" % nm)
    call(ga, "DeleteEndpoint", {"EndpointName": "Rr"})
    wait_ep(ga, "Rr", ("gone",), 10, "redis restart: delete")


def redis_hung(ga, gb, redis):
    """Redis stopped (SIGSTOP: it accepts, answers nothing): the admin API
    answers ServiceUnavailable within a few seconds instead of holding
    calls, /readyz says so, the data plane serves; SIGCONT: all back."""
    model(ga, "rh-m", "kmeans", "file://" + KM2D_PATH)
    config(ga, "rh-c", [("AllTraffic", "rh-m", 1.0)])
    ep_create(ga, "Rh", "rh-c")
    wait_ep(ga, "Rh", ("InService",), 15, "redis hung: Rh")
    os.kill(redis.proc.pid, signal.SIGSTOP)
    try:
        t = time.time()
        st, et, msg, _ = call(ga, "DescribeEndpoint", {"EndpointName": "Rh"}, timeout=30)
        took = time.time() - t
        log("redis hung: DescribeEndpoint answered %d %s after %.2f s" % (st, et, took))
        check((st, et) == (503, "ServiceUnavailable") and took < 10,
              "redis hung: ServiceUnavailable within 10 s, got %d %s %r after %.1f s"
              % (st, et, msg, took))
        for gw, nm in ((ga, "A"), (gb, "B")):
            st, js = readyz_wait(gw, "degraded", 10, 0.2)
            check_eq((st, js.get("status")), (200, "degraded"), "redis hung: %s degraded" % nm)
            check_eq(invoke(gw.port, "Rh")[0], 200, "redis hung: %s serves Rh" % nm)
    finally:
        os.kill(redis.proc.pid, signal.SIGCONT)
    for gw, nm in ((ga, "A"), (gb, "B")):
        st, js = readyz_wait(gw, "ready", 10)
        check_eq(js.get("status"), "ready", "redis hung, then resumed: %s ready" % nm)
    check_eq((describe(ga, "Rh") or {}).get("EndpointStatus"), "InService",
             "redis resumed: Rh InService")
    call(ga, "DeleteEndpoint", {"EndpointName": "Rh"})
    wait_ep(ga, "Rh", ("gone",), 10, "redis hung: delete")


def gateway_stopped(ga, redis):
    """The gateway itself stopped (SIGSTOP) for longer than the store's
    reply watch (5 s) with a command in flight, whose reply comes while it
    is stopped: after SIGCONT the call is answered 200 and the connection
    is not dropped. After SIGCONT epoll_wait returns EINTR and the loop's
    first turn runs its due timers before it reads the reply: a watch that
    judged by the clock took the stop for a silent server. Redis is held
    (SIGSTOP) for the moment the call is sent, so that its command is
    surely in flight when the gateway stops."""
    model(ga, "gs-m", "kmeans", "file://" + KM2D_PATH)
    config(ga, "gs-c", [("AllTraffic", "gs-m", 1.0)])
    ep_create(ga, "Gs", "gs-c")
    wait_ep(ga, "Gs", ("InService",), 15, "gateway stopped: Gs")
    log_before = len(ga.stderr())
    res = []
    for _ in range(2):
        try:
            os.kill(redis.proc.pid, signal.SIGSTOP)
            th = threading.Thread(target=lambda: res.append(
                call(ga, "DescribeEndpoint", {"EndpointName": "Gs"}, timeout=40)[:2]))
            th.start()
            time.sleep(0.3)  # sent to Redis, no reply yet
            os.kill(ga.proc.pid, signal.SIGSTOP)
            os.kill(redis.proc.pid, signal.SIGCONT)  # the reply waits in the gateway's socket
            time.sleep(6.5)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
            os.kill(ga.proc.pid, signal.SIGCONT)
        th.join(40)
    drops = ga.stderr()[log_before:].count("no reply within")
    log("gateway stopped: %r, %d drops" % (res, drops))
    check_eq(res, [(200, None)] * 2, "gateway stopped: the call in flight across each stop "
             "answered 200")
    check_eq(drops, 0, "gateway stopped: the store's command connection was not dropped")
    call(ga, "DeleteEndpoint", {"EndpointName": "Gs"})
    wait_ep(ga, "Gs", ("gone",), 10, "gateway stopped: delete")


def sigterm_states(gw):
    """SIGTERM while Creating (slow load) and while Deleting (a request held,
    long drain): restart; final states."""
    if not os.path.exists(BIG_PATH):
        make_big()
    model(gw, "st-big", "kmeans", "file://" + BIG_PATH)
    config(gw, "st-c", [("AllTraffic", "st-big", 1.0)])
    ep_create(gw, "StCreating", "st-c")
    time.sleep(0.2)
    check_eq((describe(gw, "StCreating") or {}).get("EndpointStatus"), "Creating",
             "sigterm: Creating at the SIGTERM")
    t = time.time()
    code = gw.stop(timeout=60)
    log("sigterm while Creating: exit %d after %.2f s" % (code, time.time() - t))
    check(code == 0, "sigterm: exit 0 while Creating")
    gw.start()
    wait_ep(gw, "StCreating", ("InService",), 40, "sigterm_creating: InService after restart")
    slow = SlowContainer(4.0)
    try:
        ok(gw, "CreateModel", {"ModelName": "st-slow", "PrimaryContainer": {"Image": slow.url}},
           "sigterm: model")
        config(gw, "st-c2", [("AllTraffic", "st-slow", 1.0)])
        ep_create(gw, "StDeleting", "st-c2")
        wait_ep(gw, "StDeleting", ("InService",), 15, "sigterm: StDeleting")
        th = threading.Thread(target=lambda: invoke(gw.port, "StDeleting", body="1,2\n"))
        th.start()
        time.sleep(0.3)
        call(gw, "DeleteEndpoint", {"EndpointName": "StDeleting"})
        time.sleep(0.2)
        check_eq((describe(gw, "StDeleting") or {}).get("EndpointStatus"), "Deleting",
                 "sigterm: Deleting at the SIGTERM")
        t = time.time()
        code = gw.stop(timeout=60)
        log("sigterm while Deleting: exit %d after %.2f s" % (code, time.time() - t))
        check(code == 0, "sigterm: exit 0 while Deleting")
        th.join(10)
        gw.start()
        wait_ep(gw, "StDeleting", ("gone",), 10, "sigterm_deleting: gone after restart")
    finally:
        slow.close()
    call(gw, "DeleteEndpoint", {"EndpointName": "StCreating"})
    wait_ep(gw, "StCreating", ("gone",), 10, "sigterm: cleanup")


def main():
    only = os.environ.get("ONLY", "")
    gw = AdminGateway(drain_timeout_ms=8000, admin_exec_dirs=BYO_DIR)
    gws = [gw]
    try:
        for name, fn in (("auth", dup_target), ("readyz", readyz_states), ("retry", retry_backoff),
                         ("models", models_dir), ("flip", flip_flop), ("metrics", metrics_overlap),
                         ("loader", loader_queue), ("sigterm", sigterm_states),
                         ("rss", rss_cycles)):
            if only and name not in only.split(","):
                continue
            with section(name):
                if not gw.alive():
                    gw.start()
                fn(gw)
        check(gw.alive(), "gateway alive at the end")
    finally:
        code = gw.stop(timeout=30)
        check(code == 0, "gateway exit 0 on SIGTERM: %d" % code)
    if not only or "two" in only.split(","):
        redis = RedisServer()
        ga = gb = None
        try:
            ga = AdminGateway(redis_url=redis.url, drain_timeout_ms=8000)
            gws.append(ga)
            gb = AdminGateway(redis_url=redis.url, drain_timeout_ms=8000)
            gws.append(gb)
            with section("two gateways"):
                two_gateways(ga, gb)
            with section("redis restart"):
                redis_restart(ga, gb, redis)
            with section("redis hung"):
                redis_hung(ga, gb, redis)
            with section("the gateway stopped longer than the store's reply watch"):
                gateway_stopped(ga, redis)
        finally:
            for g in (ga, gb):
                if g is not None:
                    check(g.stop(timeout=30) == 0, "two: gateway exit 0")
            redis.stop()
    for g in gws:
        tail = g.stderr()
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            check(bad not in tail, "sanitizer report: %s" % tail[tail.find(bad) - 200:
                                                                tail.find(bad) + 2000])
    log("done")
    finish()


if __name__ == "__main__":
    main()
