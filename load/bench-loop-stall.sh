#!/usr/bin/env bash
# load/bench-loop-stall.sh - how long the event loop stalls while big bodies
# are decoded: /ping latency on its own connection while other processes
# post 6 MiB bodies (valid JSON, valid CSV, and a hostile [[],[],...] JSON
# body) in a loop.
#
# Starts the gateway (release build, demo K-Means model, 64 features per
# row) on a free loopback port, starts one curl loop per body kind (each a
# process of its own, HTTP/1.1, back to back), and after a warm-up pings
# GET /ping on one keep-alive connection, one request at a time with a 1 ms
# pause, for DURATION seconds. Prints the /ping latency p50 / p99 / max
# and how many big bodies were answered meanwhile (a stall test without load
# proves nothing). Target (issue 13, point 8): p99 under 5 ms.
#
# Usage: load/bench-loop-stall.sh     (env DURATION seconds, default 10;
#        INFERGATE_BIN, default bin/infergate; POSTERS per body kind,
#        default 1; KEEP=1 keeps the temporary directory)
# To compare with an older commit, build it in a worktree and point
# INFERGATE_BIN at its binary:
#   git worktree add /tmp/ig-before HEAD~N && make -C /tmp/ig-before all
#   INFERGATE_BIN=/tmp/ig-before/bin/infergate load/bench-loop-stall.sh
# Exit status: 0 on a complete measurement (whatever the figures), 1 when
# the gateway did not start or died, 2 on bad usage.
set -euo pipefail

DURATION=${DURATION:-10}
POSTERS=${POSTERS:-1}
for v in "$DURATION" "$POSTERS"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "usage: [DURATION=S POSTERS=N] $0" >&2; exit 2; }
done
PY=/usr/bin/python3

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${INFERGATE_BIN:-bin/infergate}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
for tool in curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-loop-stall: $tool not found" >&2; exit 1; }
done
if [ ! -x "$BIN" ]; then
    echo "bench-loop-stall: $BIN missing, running make" >&2
    make --no-print-directory all >&2
fi

TMP=$(mktemp -d /tmp/ig-loop-stall.XXXXXX)
SRV_PID=
POSTER_PIDS=()
cleanup() {
    local rc=$?
    for p in "${POSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${POSTER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    [ "${KEEP:-0}" = 1 ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT INT TERM

# The bodies: as close to 6 MiB (6,291,456 bytes, the body limit) as the
# rows allow.
"$PY" - "$TMP" "$ROOT/conf/data/digits.csv" <<'EOF'
import json, sys
tmp, digits = sys.argv[1], sys.argv[2]
LIMIT = 6 * 1024 * 1024
rows = [l.strip() for l in open(digits) if l.strip()]
# CSV: digit rows repeated.
out, n, i = [], 0, 0
while True:
    line = rows[i % len(rows)] + "\n"
    if n + len(line) > LIMIT:
        break
    out.append(line); n += len(line); i += 1
open(tmp + "/big.csv", "w").write("".join(out))
# JSON: {"instances":[[...],...]}
vals = [json.dumps([float(v) for v in r.split(",")], separators=(",", ":")) for r in rows]
parts, n, i = [], len('{"instances":[]}'), 0
while True:
    v = vals[i % len(vals)]
    if n + len(v) + 1 > LIMIT:
        break
    parts.append(v); n += len(v) + 1; i += 1
open(tmp + "/big.json", "w").write('{"instances":[' + ",".join(parts) + "]}")
# Hostile: [[],[],...], every element a row the decoder must look at.
k = (LIMIT - 2) // 3
open(tmp + "/hostile.json", "w").write("[" + ",".join(["[]"] * k) + "]")
EOF

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$TMP/infergate.conf" <<EOF
listen = 127.0.0.1:$PORT
log_level = error

[endpoint demo]
model = file://$ROOT/conf/models/demo-kmeans.json
EOF
"$BIN" --config "$TMP/infergate.conf" 2>"$TMP/stderr.log" &
SRV_PID=$!
for _ in $(seq 150); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/ping" && break
    kill -0 "$SRV_PID" 2>/dev/null || { echo "bench-loop-stall: gateway died: $(cat "$TMP/stderr.log")" >&2; exit 1; }
    sleep 0.1
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/ping" || { echo "bench-loop-stall: no /ping" >&2; exit 1; }

URL=http://127.0.0.1:$PORT/endpoints/demo/invocations
# One loop per body kind and poster; each answered request appends its
# status to the kind's count file. The posters run at nice 10: on a box
# with two cores they would otherwise measure how curl competes with the
# gateway for a CPU, not how long the gateway's loop stalls.
poster() { # kind file content-type
    while :; do
        nice -n 10 curl -s --http1.1 -o /dev/null -w '%{http_code}\n' -H "Content-Type: $3" \
            --data-binary "@$2" "$URL" >>"$TMP/count.$1" || true
    done
}
for _ in $(seq "$POSTERS"); do
    poster json "$TMP/big.json" application/json & POSTER_PIDS+=($!)
    poster csv "$TMP/big.csv" text/csv & POSTER_PIDS+=($!)
    poster hostile "$TMP/hostile.json" application/json & POSTER_PIDS+=($!)
done
sleep 1 # warm-up: the posters are uploading and decoding

"$PY" - "$PORT" "$DURATION" "$TMP" <<'EOF'
import http.client, os, sys, time
port, duration, tmp = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]

def counts():
    res = {}
    for kind in ("json", "csv", "hostile"):
        try:
            with open(os.path.join(tmp, "count." + kind)) as f:
                res[kind] = [l.strip() for l in f if l.strip()]
        except FileNotFoundError:
            res[kind] = []
    return res

before = counts()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
lat = []
end = time.monotonic() + duration
while time.monotonic() < end:
    t0 = time.perf_counter()
    c.request("GET", "/ping")
    r = c.getresponse()
    r.read()
    lat.append((time.perf_counter() - t0) * 1000.0)
    if r.status != 200:
        print("bench-loop-stall: /ping answered %d" % r.status)
        sys.exit(1)
    time.sleep(0.001)
after = counts()
lat.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
print("/ping on its own connection, %d pings in %.0f s" % (len(lat), duration))
print("  p50 %.2f ms   p99 %.2f ms   max %.2f ms" % (pct(50), pct(99), lat[-1]))
for kind, what in (("json", "6 MiB JSON"), ("csv", "6 MiB CSV"), ("hostile", "6 MiB [[],[],...]")):
    got = after[kind][len(before[kind]):]
    by = {}
    for s in got:
        by[s] = by.get(s, 0) + 1
    print("  %-18s bodies answered meanwhile: %d %s" % (what, len(got),
          " ".join("(%s: %d)" % kv for kv in sorted(by.items()))))
print("target: p99 < 5 ms -> %s" % ("met" if pct(99) < 5.0 else "NOT met"))
EOF
kill -0 "$SRV_PID" 2>/dev/null || { echo "bench-loop-stall: the gateway died" >&2; exit 1; }
