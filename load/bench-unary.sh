#!/usr/bin/env bash
# load/bench-unary.sh [SECONDS] - unary InvokeEndpoint throughput and latency
# against the ceiling of an nghttp2 server on this machine.
#
# One run does, on free loopback ports:
#   1. bin/infergate (built with `make` if missing) with one embedded K-Means
#      endpoint `bench` (load/models/bench-kmeans-10.json, k=10, D=10) and the
#      default batching (max_batch_rows 256, max_delay_us 2000,
#      max_inflight 8), driven by
#        h2load -D SECONDS --warm-up-time WARMUP -c 32 -m 32 -d ROW.csv \
#               -H 'content-type: text/csv' -H 'accept: text/csv' URL
#      where ROW.csv is one row of 10 features;
#   2. nghttpd --no-tls serving a static file holding exactly the gateway's
#      response body for that row, driven by the same h2load command (POST
#      with the same body: nghttpd answers a POST with the file; the script
#      checks that and falls back to GET, saying so, if it ever does not).
# It prints req/s (h2load's figure over the measured SECONDS), p50 and p99 of
# the per-request latencies in h2load's --log-file (nearest rank), the server
# CPU time per request, the ratio gateway/nghttpd, and whether the targets
# hold: ratio >= 0.6 and gateway p99 <= max_delay + 5 ms.
#
# Exit status: 0 when both runs completed with every response 2xx (a missed
# target is reported, not an error); 1 on a broken run (a non-2xx or failed
# request, a server that died or did not start, a gateway that did not exit 0
# on SIGTERM); 2 on bad usage. Everything started here is stopped on exit.
#
# Environment: WARMUP (seconds, default 1), CLIENTS (32), STREAMS (32),
# for experiments MAX_BATCH_ROWS (256), MAX_DELAY_US (2000), MAX_INFLIGHT (8),
# WORKERS (0: one per CPU); KEEP=1 keeps the temporary directory (logs,
# config) for inspection.
set -euo pipefail

usage() {
    echo "usage: $0 [SECONDS]   (default 10; env WARMUP, CLIENTS, STREAMS, MAX_BATCH_ROWS," >&2
    echo "       MAX_DELAY_US, MAX_INFLIGHT, WORKERS, KEEP: decimal integers)" >&2
    exit 2
}

DURATION=${1:-10}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-32}
STREAMS=${STREAMS:-32}
[ $# -le 1 ] || usage

MAX_BATCH_ROWS=${MAX_BATCH_ROWS:-256}
MAX_DELAY_US=${MAX_DELAY_US:-2000}
MAX_INFLIGHT=${MAX_INFLIGHT:-8}
WORKERS=${WORKERS:-0}
PY=/usr/bin/python3
for v in "$DURATION" "$WARMUP" "$CLIENTS" "$STREAMS" "$MAX_BATCH_ROWS" "$MAX_INFLIGHT"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done
for v in "$MAX_DELAY_US" "$WORKERS"; do
    [[ "$v" =~ ^[0-9]+$ ]] || usage
done

cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=$ROOT/load/models/bench-kmeans-10.json

for tool in h2load nghttpd curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-unary: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ -f "$MODEL" ] || { echo "bench-unary: $MODEL missing (load/models/gen_bench_model.py writes it)" >&2; exit 1; }
if [ ! -x bin/infergate ]; then
    echo "bench-unary: bin/infergate missing, running make" >&2
    make --no-print-directory all >&2
fi

TMP=$(mktemp -d /tmp/ig-bench-unary.XXXXXX)
GW_PID='' NG_PID=''
cleanup() {
    local rc=$?
    for pid in $GW_PID $NG_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-unary: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-unary: BROKEN RUN: $*" >&2; exit 1; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of a process, all threads, in microseconds.
cpu_us() {
    local ticks
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat")
    echo $(( ticks * 1000000 / $(getconf CLK_TCK) ))
}

# "TID TICKS" (utime + stime) for each thread of a process.
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        awk -v tid="${t##*/}" '{ sub(/^.*\) /, ""); print tid, $12 + $13 }' "$t/stat" 2>/dev/null || true
    done
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
GW_PORT=$(free_port)
NG_PORT=$(free_port)
while [ "$NG_PORT" = "$GW_PORT" ]; do NG_PORT=$(free_port); done

# One row of 10 features.
printf '1.5,-2.25,3,0.125,-4,5.5,-6,7.75,-8,9\n' > "$TMP/row.csv"

cat > "$TMP/infergate.conf" <<EOF
listen = 127.0.0.1:$GW_PORT
log_level = warn
workers = $WORKERS

[endpoint bench]
model = file://$MODEL
max_batch_rows = $MAX_BATCH_ROWS
max_delay_us = $MAX_DELAY_US
max_inflight = $MAX_INFLIGHT
EOF

# ---- gateway ---------------------------------------------------------------

bin/infergate --config "$TMP/infergate.conf" > "$TMP/infergate.log" 2>&1 &
GW_PID=$!
for _ in $(seq 150); do
    kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at start-up: $(cat "$TMP/infergate.log")"
    curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/ping" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/ping" || die "gateway did not answer GET /ping within 15 s"

GW_URL="http://127.0.0.1:$GW_PORT/endpoints/bench/invocations"
code=$(curl -s --http2-prior-knowledge -o "$TMP/response.csv" -w '%{http_code}' \
    -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "$GW_URL")
[ "$code" = 200 ] || die "probe request answered $code: $(cat "$TMP/response.csv")"
[ -s "$TMP/response.csv" ] || die "probe request answered an empty body"
RESP_BYTES=$(stat -c %s "$TMP/response.csv")

# Runs h2load; $1 = label, $2 = URL, $3 = pid of the server, $4... extra args.
# Leaves $TMP/$label.out (summary), $TMP/$label.log (per request), and
# $TMP/$label.cpu (server CPU microseconds during the run).
run_h2load() {
    local label=$1 url=$2 pid=$3 c0 c1 t0 t1
    shift 3
    c0=$(cpu_us "$pid")
    thread_ticks "$pid" > "$TMP/$label.threads0"
    t0=$(date +%s%N)
    # h2load under a wrapper that records its CPU time (all its threads).
    "$PY" -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % round((ru.ru_utime + ru.ru_stime) * 1e6))
sys.exit(rc)' "$TMP/$label.h2cpu" \
        h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$CLIENTS" -m "$STREAMS" "$@" \
        -H 'content-type: text/csv' -H 'accept: text/csv' \
        --log-file="$TMP/$label.log" "$url" > "$TMP/$label.out" 2>&1 \
        || die "h2load against $label exited $?: $(tail -20 "$TMP/$label.out")"
    kill -0 "$pid" 2>/dev/null || die "$label died during the run"
    c1=$(cpu_us "$pid")
    thread_ticks "$pid" > "$TMP/$label.threads1"
    t1=$(date +%s%N)
    echo "$(( c1 - c0 )) $(( (t1 - t0) / 1000 )) $(cat "$TMP/$label.h2cpu")" > "$TMP/$label.cpu"
    check_h2load "$label"
}

# Every request must have succeeded with a 2xx, in the summary and the log.
check_h2load() {
    local label=$1 out=$TMP/$1.out line total ok failed errored timeout s2 s3 s4 s5
    line=$(grep -E '^requests: ' "$out") || die "$label: no 'requests:' line in h2load output"
    total=$(sed -E 's/^requests: ([0-9]+) total.*/\1/' <<<"$line")
    ok=$(sed -E 's/.* ([0-9]+) succeeded.*/\1/' <<<"$line")
    failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    errored=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$line")
    timeout=$(sed -E 's/.* ([0-9]+) timeout.*/\1/' <<<"$line")
    line=$(grep -E '^status codes: ' "$out") || die "$label: no 'status codes:' line in h2load output"
    read -r s2 s3 s4 s5 < <(sed -E 's/^status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx.*/\1 \2 \3 \4/' <<<"$line")
    [ "$total" -gt 0 ] || die "$label: h2load completed no request"
    if [ "$failed" -ne 0 ] || [ "$errored" -ne 0 ] || [ "$timeout" -ne 0 ] || [ "$ok" -ne "$total" ] \
        || [ "$s3" -ne 0 ] || [ "$s4" -ne 0 ] || [ "$s5" -ne 0 ] || [ "$s2" -ne "$total" ]; then
        die "$label: not every response was 2xx:
$(grep -E '^(requests|status codes): ' "$out")"
    fi
    awk -F'\t' '$2 !~ /^2[0-9][0-9]$/ { bad++ } END { exit bad > 0 }' "$TMP/$label.log" \
        || die "$label: the per-request log holds non-2xx or failed (-1) streams"
}

run_h2load gateway "$GW_URL" "$GW_PID" -d "$TMP/row.csv"

kill -TERM "$GW_PID"
gw_rc=0
wait "$GW_PID" || gw_rc=$?
GW_PID=
[ "$gw_rc" -eq 0 ] || die "gateway exited $gw_rc on SIGTERM: $(tail -20 "$TMP/infergate.log")"

# ---- nghttpd: the same load against a static file of the same size -------

mkdir "$TMP/htdocs"
cp "$TMP/response.csv" "$TMP/htdocs/prediction.csv"
nghttpd --no-tls -d "$TMP/htdocs" "$NG_PORT" > "$TMP/nghttpd.log" 2>&1 &
NG_PID=$!
NG_URL="http://127.0.0.1:$NG_PORT/prediction.csv"
for _ in $(seq 100); do
    kill -0 "$NG_PID" 2>/dev/null || die "nghttpd exited at start-up: $(cat "$TMP/nghttpd.log")"
    curl -sf --http2-prior-knowledge -o /dev/null "$NG_URL" && break
    sleep 0.1
done
NG_METHOD=POST
code=$(curl -s --http2-prior-knowledge -o "$TMP/ng-probe.csv" -w '%{http_code}' \
    -H 'content-type: text/csv' --data-binary @"$TMP/row.csv" "$NG_URL" || true)
if [ "$code" = 200 ] && cmp -s "$TMP/ng-probe.csv" "$TMP/response.csv"; then
    run_h2load nghttpd "$NG_URL" "$NG_PID" -d "$TMP/row.csv"
else
    NG_METHOD="GET (nghttpd answered POST with $code, not the file)"
    run_h2load nghttpd "$NG_URL" "$NG_PID"
fi
kill -TERM "$NG_PID" 2>/dev/null || true
wait "$NG_PID" 2>/dev/null || true
NG_PID=

# ---- report ----------------------------------------------------------------

echo "bench-unary: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr)"
echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include 2>/dev/null)" ] || echo ' + uncommitted src/include changes'), $(h2load --version | head -1), $(nghttpd --version 2>&1 | head -1), load average before: $LOADAVG"
echo "  load: h2load -D $DURATION --warm-up-time $WARMUP -c $CLIENTS -m $STREAMS -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' (1 h2load thread)"
echo "  row: $(tr -d '\n' < "$TMP/row.csv")  ->  response ($RESP_BYTES bytes): $(tr -d '\n' < "$TMP/response.csv")"
echo "  gateway: embedded K-Means k=10 D=10, max_batch_rows $MAX_BATCH_ROWS, max_delay_us $MAX_DELAY_US, max_inflight $MAX_INFLIGHT, workers $WORKERS$([ "$WORKERS" != 0 ] || echo ' (one per CPU)')"
echo "  nghttpd: --no-tls, 1 worker, static $RESP_BYTES-byte file, method $NG_METHOD"
echo

"$PY" - "$TMP" "$DURATION" "$MAX_DELAY_US" <<'EOF'
import math
import os
import re
import sys

tmp, duration, max_delay_us = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def stats(label):
    with open("%s/%s.out" % (tmp, label)) as f:
        out = f.read()
    m = re.search(r"^finished in [^,]+, ([0-9.]+) req/s", out, re.M)
    if not m:
        sys.exit("bench-unary: BROKEN RUN: no req/s in h2load output for " + label)
    rps = float(m.group(1))
    lat = []
    with open("%s/%s.log" % (tmp, label)) as f:
        for line in f:
            cols = line.split("\t")
            lat.append(int(cols[2]))
    lat.sort()
    n = len(lat)

    def pct(p):  # nearest rank
        return lat[max(0, math.ceil(p / 100.0 * n) - 1)] / 1000.0

    with open("%s/%s.cpu" % (tmp, label)) as f:
        cpu_us, wall_us, client_us = (int(v) for v in f.read().split())
    cores = cpu_us / wall_us
    ticks = {}
    for i in (0, 1):
        with open("%s/%s.threads%d" % (tmp, label, i)) as f:
            for line in f:
                tid, t = line.split()
                ticks.setdefault(tid, [0, 0])[i] = int(t)
    hz = os.sysconf("SC_CLK_TCK")
    busiest = max((t1 - t0 for t0, t1 in ticks.values()), default=0) * 1e6 / hz / wall_us
    return {"busiest": busiest, "threads": len(ticks),
            "rps": rps, "n": n, "p50": pct(50), "p99": pct(99), "max": lat[-1] / 1000.0,
            "cores": cores, "cpu_per_req": cores * 1e6 / rps, "client": client_us / wall_us}


gw, ng = stats("gateway"), stats("nghttpd")
print("%-9s %9s %9s %7s %7s %7s %8s %15s %7s %7s" % ("target", "req/s", "requests", "p50 ms",
                                                   "p99 ms", "max ms", "srv CPUs",
                                                   "busiest thread", "us/req", "h2load"))
for label, s in (("infergate", gw), ("nghttpd", ng)):
    print("%-9s %9.0f %9d %7.3f %7.3f %7.3f %8.2f %8.2f (of %2d) %7.2f %7.2f"
          % (label, s["rps"], s["n"], s["p50"], s["p99"], s["max"], s["cores"], s["busiest"],
             s["threads"], s["cpu_per_req"], s["client"]))
ratio = gw["rps"] / ng["rps"]
limit = max_delay_us / 1000.0 + 5.0
print()
print("ratio infergate/nghttpd req/s: %.3f   target >= 0.6: %s" % (ratio, "MET" if ratio >= 0.6 else "MISSED"))
print("infergate p99: %.3f ms   target <= max_delay + 5 ms = %.3f ms: %s"
      % (gw["p99"], limit, "MET" if gw["p99"] <= limit else "MISSED"))
print()
print("req/s: h2load's figure over the %d s measured (warm-up excluded).\n"
      "p50/p99/max: nearest rank over every measured request in h2load's --log-file.\n"
      "srv CPUs: user+system CPU time of the server process (all threads) / wall time of the\n"
      "  h2load run (warm-up included); busiest thread: the same for its busiest thread, of N;\n"
      "  us/req: server CPU microseconds per request (srv CPUs / req/s);\n"
      "  h2load: CPUs used by the client (1 thread)." % duration)
EOF
