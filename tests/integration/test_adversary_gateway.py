"""The gateway's data path, attacked the cheap way: memory held for a client
that no budget charged, a client that locks the others out, a request that
is lost or answered twice, and bodies that cost far more than their size.
After every attack /metrics' held bytes come back to their idle value."""

import json
import os
import re
import socket
import tempfile
import threading
import time
import urllib.request

from iglib import BIN, Gateway, check, check_eq, curl, finish

tmp = tempfile.mkdtemp(prefix="ig-adv-")
SAN = "san" in os.path.basename(os.path.dirname(BIN)) or BIN.endswith("-san")


def model(name, obj):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


# K-Means over one feature: the shortest rows there are ("1\n", 2 bytes),
# and a JSON prediction of ~50 bytes each, 25 times its row.
KM1 = model("km1.json", {"algorithm": "kmeans", "feature_dim": 1, "centroids": [[0.0], [1.0]]})
ONE = model("one.json", {"algorithm": "linear-learner", "feature_dim": 1,
                         "predictor_type": "regressor", "weights": [1.0], "bias": 0.0})


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return "@" + path


def metric(gw, name):
    with urllib.request.urlopen(gw.url + "/metrics", timeout=30) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def held(gw):
    return metric(gw, "infergate_buffered_bytes")


def settle(gw, idle, what):
    """Held bytes come back to <idle> (frees on workers may lag a little)."""
    deadline = time.time() + 10
    h = held(gw)
    while h != idle and time.time() < deadline:
        time.sleep(0.1)
        h = held(gw)
    check_eq(h, idle, what + ": held bytes back to their idle value")


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def parallel(fn, n):
    res = [None] * n

    def one(i):
        res[i] = fn(i)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


# ---- predictions gathered for a request spread over batches are charged ------
# 6 MiB of "1\n": 3,145,728 rows. The body and the rows are charged (56 MB);
# the predictions gathered for the response (8 bytes a row of slices, and up
# to 64 MiB of JSON text) were not: three such requests at once held ~270 MB
# that no budget saw, past a server budget of 200 MiB. They are charged to
# the server-wide budget now, so the gateway's peak memory stays within it.
BUDGET = 200 << 20
with Gateway({"km1": {"model": KM1, "max_batch_rows": "4096"}}, workers="2",
             max_buffered_body_bytes=str(BUDGET)) as gw:
    idle = held(gw)
    base = vm_hwm(gw.proc.pid)
    short = write("short.csv", "1\n" * (3 << 20))
    res = parallel(lambda i: curl(gw.invoke_url("km1"), short, ["Content-Type: text/csv"]), 3)
    thr = ('{"message":"The predictions of this request do not fit in what the gateway may hold '
           'for clients (%d bytes); retry later or send fewer rows."}' % BUDGET)
    big = '{"message":"The predictions are too large to hold."}'
    got = [(s, h.get("x-amzn-errortype"), o) for s, h, o in res]
    check(all(g in ((400, "ThrottlingException", thr), (500, "InternalFailure", big)) for g in got)
          and (400, "ThrottlingException", thr) in got,
          "3 x 6 MiB of K-Means rows with JSON predictions: refused by the budget: %r"
          % [(s, t, o[:160]) for s, t, o in got])
    peak = vm_hwm(gw.proc.pid) - base
    if not SAN:  # ASan's quarantine keeps freed memory resident
        check(peak < BUDGET + (48 << 20),
              "peak memory %d MB stays within the 200 MiB budget (+48 MiB)" % (peak >> 20))
    settle(gw, idle, "predictions refused")
    # A request whose predictions fit is answered exactly, over many batches.
    st, _, out = curl(gw.invoke_url("km1"), write("s20k.csv", "1\n0\n" * 10000),
                      ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq((st, out), (200, "1.0,0.0\n0.0,0.0\n" * 10000),
             "20,000 rows over 5 batches: every prediction exact")
    settle(gw, idle, "predictions answered")

finish()
