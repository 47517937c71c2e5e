"""h2load: 64 concurrent streams per connection against the embedded K-Means
endpoint. Every response must be a 2xx of exactly the expected size, the
gateway must have counted every row, and rows from different requests must
have shared batches."""

import os
import re
import tempfile

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, digits_rows, expected_body,
                   finish, load_model, run)

N = 20000
demo = load_model(DEMO_MODEL)
rows = digits_rows(2)
tmp = tempfile.mkdtemp(prefix="ig-h2load-")
body_path = os.path.join(tmp, "rows.csv")
with open(body_path, "w") as f:
    f.write(csv_body(rows))
want = expected_body(demo, rows, "text/csv")


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


with Gateway({"demo": {"model": DEMO_MODEL}}) as gw:
    r = run(["h2load", "-n", str(N), "-c", "4", "-m", "64", "-d", body_path,
             "-H", "content-type: text/csv", "-H", "accept: text/csv", gw.invoke_url("demo")],
            timeout=300)
    out = r.stdout.decode()
    check_eq(r.returncode, 0, "h2load exit status")
    check("requests: %d total, %d started, %d done, %d succeeded, 0 failed, 0 errored, 0 timeout"
          % (N, N, N, N) in out, "every request succeeded: " + out[-800:])
    check("status codes: %d 2xx, 0 3xx, 0 4xx, 0 5xx" % N in out, "every response 2xx")
    # Every response body had exactly the expected length.
    m = re.search(r"traffic: .*\((\d+)\) data", out)
    check_eq(int(m.group(1)) if m else None, N * len(want), "response DATA bytes = N * body")

    text = run(["curl", "-sS", gw.url + "/metrics"]).stdout.decode()
    check_eq(metric(text, 'infergate_rows_total{endpoint="demo"}'), N * len(rows), "rows counted")
    batches = sum(metric(text, 'infergate_batches_total{endpoint="demo",reason="%s"}' % k) or 0
                  for k in ("rows", "bytes", "delay", "drain"))
    check(0 < batches < N, "requests shared batches: %d batches for %d requests" % (batches, N))
    check_eq(metric(text, 'infergate_batch_rows_count{endpoint="demo"}'), batches,
             "batch histogram count matches")

finish()
