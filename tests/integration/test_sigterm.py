"""SIGTERM during load: the gateway stops accepting, answers every request it
had accepted (HTTP/1.1 and HTTP/2), and exits 0."""

import http.client
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows, expected_body,
                   finish, load_model)

demo = load_model(DEMO_MODEL)
rows = digits_rows(3)
body = csv_body(rows)
want = expected_body(demo, rows, "text/csv")
tmp = tempfile.mkdtemp(prefix="ig-sigterm-")
with open(os.path.join(tmp, "rows.csv"), "w") as f:
    f.write(body)

# A long batching delay keeps requests in flight when the signal lands.
gw = Gateway({"demo": {"model": DEMO_MODEL, "max_delay_us": "300000", "max_batch_rows": "100000"}},
             drain_timeout_ms="10000")
port = gw.port
outcomes = []
lock = threading.Lock()


def h1_client(i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("POST", "/endpoints/demo/invocations", body=body,
                  headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        r = c.getresponse()
        res = (r.status, r.read().decode())
    except Exception as e:  # noqa: BLE001 - recorded and judged below
        res = ("error", repr(e))
    with lock:
        outcomes.append(res)


threads = [threading.Thread(target=h1_client, args=(i,)) for i in range(40)]
for t in threads:
    t.start()
h2 = subprocess.Popen(["nghttp", "-m", "40", "-H", "content-type: text/csv", "-H", "accept: text/csv",
                       "-d", os.path.join(tmp, "rows.csv"), gw.invoke_url("demo")],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
# Wait until every request is in the gateway (queued behind the 300 ms delay).
deadline = time.time() + 5
while time.time() < deadline:
    m = subprocess.run(["curl", "-s", gw.url + "/metrics"], capture_output=True).stdout.decode()
    line = [l for l in m.splitlines() if l.startswith('infergate_requests_total{endpoint="demo"}')]
    if line and int(float(line[0].split()[-1])) >= 80:
        break
    time.sleep(0.01)
t0 = time.time()
gw.proc.send_signal(signal.SIGTERM)
for t in threads:
    t.join()
out, err = h2.communicate(timeout=30)
code = gw.proc.wait(timeout=30)
elapsed = time.time() - t0

check_eq(code, 0, "exit status after SIGTERM")
check(elapsed < 10, "drained within drain_timeout (%.2fs)" % elapsed)
check_eq(sum(1 for s, b in outcomes if s == 200 and b == want), 40,
         "all 40 accepted HTTP/1.1 requests answered exactly: %r" % outcomes[:3])
check_eq(out.decode(), want * 40, "all 40 accepted HTTP/2 streams answered exactly")

# After the drain nothing listens on the port.
s = socket.socket()
try:
    s.connect(("127.0.0.1", port))
    refused = False
except ConnectionRefusedError:
    refused = True
s.close()
check(refused, "listener closed after drain")
finish()
