#!/usr/bin/env bash
# load/bench-upstream.sh [SECONDS] - one-row requests through infergate to a
# model container, side by side with clients calling the container directly.
#
# One run does, on free loopback ports:
#   1. bin/fake-container (built with `make` if missing) serving
#      load/models/bench-kmeans-10.json (k=10, D=10) as the SageMaker
#      container contract, with the issue's service model:
#        --latency-us 2000 --per-row-us 5 --max-concurrent 4
#      (2 ms per call plus 5 us per row, at most 4 calls in service at once,
#      the rest wait FIFO);
#   2. "direct": clients calling the container with one row per call,
#        h2load -D SECONDS --warm-up-time WARMUP -c CLIENTS -m STREAMS \
#               -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' \
#               http://127.0.0.1:FC/invocations
#   3. "infergate": bin/infergate with endpoint `bench` whose model is that
#      container (model = http://127.0.0.1:FC), driven by the same h2load
#      command against /endpoints/bench/invocations: the gateway packs the
#      rows of many requests into few calls.
#   4. "h2 floor": load/h2-floor.c (compiled here), an nghttp2 server on
#      libevent built as the gateway's front, which answers every request
#      with the gateway's answer bytes and response headers and does no other
#      work, driven by the same h2load command. It holds the requests that
#      end within FLOOR_HOLD_US (default LATENCY_US, a container call's
#      time) and answers them together, as the gateway answers a batch's
#      requests when its call returns (2 ms gives about the gateway's rate
#      and latency here). Its CPU per request is what HTTP/2 through
#      nghttp2, libevent and the kernel cost at this load before any
#      gateway work.
# The gateway's answer is checked byte for byte against the container's own
# answer for the same row before the runs.
#
# It prints rows/s (h2load's req/s over the measured SECONDS: one row per
# request), p50 and p99 of the per-request latencies in h2load's --log-file
# (nearest rank), the ratio infergate/direct, the gateway's CPU per row
# (utime + stime of the process from /proc/PID/stat, all threads, before and
# after the run, divided by the rows its /metrics counted in between), the
# rows per call the container saw (its GET /stats), the CPUs used by h2load,
# the container and the gateway in each run (on a 2-CPU machine they share
# the CPUs), and the targets of issue 14: ratio >= 50, infergate p99 < 20 ms,
# CPU per row < 2 us.
#
# Exit status: 0 when both runs completed with every response 2xx (a missed
# target is reported, not an error); 1 on a broken run (a non-2xx or failed
# request, a process that died or did not start, a gateway that did not exit
# 0 on SIGTERM); 2 on bad usage. Everything started here is stopped on exit.
#
# Environment: WARMUP (seconds, default 1), CLIENTS (32), STREAMS (32); the
# gateway endpoint's options MAX_BATCH_ROWS (256), MAX_DELAY_US (1000),
# MAX_INFLIGHT (16), UPSTREAM_HTTP2 (off), WORKERS (0: one per CPU); the
# container's LATENCY_US (2000), PER_ROW_US (5), MAX_CONCURRENT (4); the
# floor's FLOOR_HOLD_US (LATENCY_US; 0 answers each at once);
# KEEP=1 keeps the temporary directory (logs, config) for inspection.
# STRACE=1 then runs the load once more with the gateway under `strace -c -f`
# for STRACE_SECONDS (5) and prints its system calls per row.
# INFERGATE_BIN (default bin/infergate) runs another build of the gateway
# (e.g. a copy taken before a change, so that a rebuild cannot disturb a run).
# CALLGRIND=1 then also counts the gateway's instructions per row under
# valgrind --tool=callgrind (CG_N1, CG_N2 requests: 10000, 40000) and where
# they go, by object file and function, beside the h2 floor's per request.
set -euo pipefail

usage() {
    echo "usage: $0 [SECONDS]   (default 10; env WARMUP, CLIENTS, STREAMS, MAX_BATCH_ROWS," >&2
    echo "       MAX_DELAY_US, MAX_INFLIGHT, WORKERS, LATENCY_US, PER_ROW_US, MAX_CONCURRENT:" >&2
    echo "       decimal integers; UPSTREAM_HTTP2 on|off; KEEP)" >&2
    exit 2
}

DURATION=${1:-10}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-32}
STREAMS=${STREAMS:-32}
[ $# -le 1 ] || usage

# The gateway's endpoint, tuned for this load (see load/README.md).
MAX_BATCH_ROWS=${MAX_BATCH_ROWS:-256}
MAX_DELAY_US=${MAX_DELAY_US:-1000}
MAX_INFLIGHT=${MAX_INFLIGHT:-16}
UPSTREAM_HTTP2=${UPSTREAM_HTTP2:-off}
WORKERS=${WORKERS:-0}
# The container's service model (issue 14).
LATENCY_US=${LATENCY_US:-2000}
PER_ROW_US=${PER_ROW_US:-5}
MAX_CONCURRENT=${MAX_CONCURRENT:-4}
PY=/usr/bin/python3
for v in "$DURATION" "$WARMUP" "$CLIENTS" "$STREAMS" "$MAX_BATCH_ROWS" "$MAX_INFLIGHT" \
    "$MAX_CONCURRENT"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done
FLOOR_HOLD_US=${FLOOR_HOLD_US:-$LATENCY_US}
for v in "$MAX_DELAY_US" "$WORKERS" "$LATENCY_US" "$PER_ROW_US" "$FLOOR_HOLD_US"; do
    [[ "$v" =~ ^[0-9]+$ ]] || usage
done
[[ "$UPSTREAM_HTTP2" =~ ^(on|off)$ ]] || usage

cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=$ROOT/load/models/bench-kmeans-10.json

for tool in h2load curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-upstream: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ -f "$MODEL" ] || { echo "bench-upstream: $MODEL missing (load/models/gen_bench_model.py writes it)" >&2; exit 1; }
IG_BIN=${INFERGATE_BIN:-$ROOT/bin/infergate}
[ -z "${INFERGATE_BIN:-}" ] || [ -x "$IG_BIN" ] || { echo "bench-upstream: $IG_BIN is not executable" >&2; exit 1; }
if [ ! -x "$IG_BIN" ] || [ ! -x bin/fake-container ]; then
    echo "bench-upstream: bin/infergate or bin/fake-container missing, running make" >&2
    make --no-print-directory all >&2
fi

TMP=$(mktemp -d /tmp/ig-bench-upstream.XXXXXX)
GW_PID='' FC_PID='' FL_PID=''
cleanup() {
    local rc=$?
    for pid in $GW_PID $FC_PID $FL_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-upstream: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-upstream: BROKEN RUN: $*" >&2; exit 1; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime and stime of a process, all threads, in microseconds: "USER SYSTEM".
cpu_us_split() {
    local u st
    read -r u st < <(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat")
    echo "$(( u * 1000000 / $(getconf CLK_TCK) )) $(( st * 1000000 / $(getconf CLK_TCK) ))"
}

# utime + stime of a process, all threads, in microseconds.
cpu_us() {
    local ticks
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat")
    echo $(( ticks * 1000000 / $(getconf CLK_TCK) ))
}

# Waits up to $5 tenths of a second for process $2 to print
# "listening on 127.0.0.1:PORT" to $3 and sets the variable named $1 to PORT;
# $4 names the process and holds its log ($4.log in $TMP) for the error.
wait_listening() {
    local var=$1 pid=$2 out=$3 name=$4 tries=$5 got=
    for _ in $(seq "$tries"); do
        kill -0 "$pid" 2>/dev/null || die "$name exited at start-up: $(tail -5 "$TMP/$name.log")"
        got=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
        [ -z "$got" ] || break
        sleep 0.1
    done
    [ -n "$got" ] || die "$name printed no 'listening on' line"
    printf -v "$var" '%s' "$got"
}

# The gateway's rows accepted so far for endpoint bench (its /metrics).
gw_rows() {
    curl -sf "http://127.0.0.1:$GW_PORT/metrics" \
        | awk '$1 == "infergate_rows_total{endpoint=\"bench\"}" { printf "%d\n", $2 }'
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
GW_PORT=$(free_port)

# One row of 10 features.
printf '1.5,-2.25,3,0.125,-4,5.5,-6,7.75,-8,9\n' > "$TMP/row.csv"

# ---- the container -----------------------------------------------------------

bin/fake-container --model "$MODEL" --port 0 --latency-us "$LATENCY_US" \
    --per-row-us "$PER_ROW_US" --max-concurrent "$MAX_CONCURRENT" \
    > "$TMP/fake-container.out" 2> "$TMP/fake-container.log" &
FC_PID=$!
wait_listening FC_PORT "$FC_PID" "$TMP/fake-container.out" fake-container 100
FC_URL="http://127.0.0.1:$FC_PORT/invocations"
code=$(curl -s --http2-prior-knowledge -o "$TMP/direct.csv" -w '%{http_code}' \
    -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "$FC_URL")
[ "$code" = 200 ] || die "the container answered the probe row $code: $(cat "$TMP/direct.csv")"

# ---- the gateway ---------------------------------------------------------------

cat > "$TMP/infergate.conf" <<EOF
listen = 127.0.0.1:$GW_PORT
log_level = warn
workers = $WORKERS

[endpoint bench]
model = http://127.0.0.1:$FC_PORT
max_batch_rows = $MAX_BATCH_ROWS
max_delay_us = $MAX_DELAY_US
max_inflight = $MAX_INFLIGHT
upstream_http2 = $UPSTREAM_HTTP2
EOF

"$IG_BIN" --config "$TMP/infergate.conf" > "$TMP/infergate.log" 2>&1 &
GW_PID=$!
for _ in $(seq 150); do
    kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at start-up: $(cat "$TMP/infergate.log")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW_PORT/readyz")" = 200 ] \
    || die "gateway not ready (GET /readyz) within 15 s: $(curl -s "http://127.0.0.1:$GW_PORT/readyz")"

GW_URL="http://127.0.0.1:$GW_PORT/endpoints/bench/invocations"
code=$(curl -s --http2-prior-knowledge -o "$TMP/response.csv" -w '%{http_code}' \
    -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "$GW_URL")
[ "$code" = 200 ] || die "probe request answered $code: $(cat "$TMP/response.csv")"
cmp -s "$TMP/response.csv" "$TMP/direct.csv" \
    || die "the gateway's answer '$(cat "$TMP/response.csv")' differs from the container's '$(cat "$TMP/direct.csv")'"
RESP_BYTES=$(stat -c %s "$TMP/response.csv")

# Runs h2load; $1 = label, $2 = URL. Leaves $TMP/$label.out (summary) and
# $TMP/$label.requests (per request).
run_h2load() {
    local label=$1 url=$2 f0 f1 t0 t1
    f0=$(cpu_us "$FC_PID"); t0=$(date +%s%N)
    # h2load under a wrapper that records its CPU time (all its threads).
    "$PY" -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % round((ru.ru_utime + ru.ru_stime) * 1e6))
sys.exit(rc)' "$TMP/$label.h2cpu" \
        h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$CLIENTS" -m "$STREAMS" -d "$TMP/row.csv" \
        -H 'content-type: text/csv' -H 'accept: text/csv' \
        --log-file="$TMP/$label.requests" "$url" > "$TMP/$label.out" 2>&1 \
        || die "h2load against $label exited $?: $(tail -20 "$TMP/$label.out")"
    kill -0 "$FC_PID" 2>/dev/null || die "the container died during the $label run"
    f1=$(cpu_us "$FC_PID"); t1=$(date +%s%N)
    echo "$(( f1 - f0 )) $(cat "$TMP/$label.h2cpu") $(( (t1 - t0) / 1000 ))" > "$TMP/$label.cpus"
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
    awk -F'\t' '$2 !~ /^2[0-9][0-9]$/ { bad++ } END { exit bad > 0 }' "$TMP/$label.requests" \
        || die "$label: the per-request log holds non-2xx or failed (-1) streams"
}

# ---- direct: one row per call to the container -----------------------------------

curl -sf "http://127.0.0.1:$FC_PORT/stats" > "$TMP/fc-stats0.json"
run_h2load direct "$FC_URL"
curl -sf "http://127.0.0.1:$FC_PORT/stats" > "$TMP/fc-stats1.json"

# ---- infergate: the same load through the gateway ---------------------------------

# run_h2load $1 against URL $2, with the CPU of process $3 and the count
# command $4 prints (rows or requests served) read before and after:
# $TMP/$1.cpu holds "CPU_US COUNT WALL_US USER_US SYSTEM_US".
measured_run() {
    local label=$1 url=$2 pid=$3 count=$4 r0 r1 u0 u1 s0 s1 t0 t1
    r0=$("$count"); read -r u0 s0 < <(cpu_us_split "$pid"); t0=$(date +%s%N)
    run_h2load "$label" "$url"
    kill -0 "$pid" 2>/dev/null || die "$label died during the run"
    r1=$("$count"); read -r u1 s1 < <(cpu_us_split "$pid"); t1=$(date +%s%N)
    echo "$(( u1 - u0 + s1 - s0 )) $(( r1 - r0 )) $(( (t1 - t0) / 1000 )) $(( u1 - u0 )) $(( s1 - s0 ))" \
        > "$TMP/$label.cpu"
}
measured_run infergate "$GW_URL" "$GW_PID" gw_rows

# STRACE=1: the same load once more (not measured above), the gateway's
# system calls counted by `strace -c -f` over STRACE_SECONDS (default 5) of
# it; strace slows the gateway, so its calls per row, not its rate, count.
if [ "${STRACE:-0}" = 1 ]; then
    command -v strace >/dev/null || die "STRACE=1 needs strace"
    STRACE_SECONDS=${STRACE_SECONDS:-5}
    [[ "$STRACE_SECONDS" =~ ^[1-9][0-9]*$ ]] || usage
    h2load -D "$((STRACE_SECONDS + 2))" -c "$CLIENTS" -m "$STREAMS" -d "$TMP/row.csv" \
        -H 'content-type: text/csv' -H 'accept: text/csv' "$GW_URL" > "$TMP/strace-h2load.out" 2>&1 &
    st_h2=$!
    sleep 1
    sr0=$(gw_rows)
    timeout -s INT "$STRACE_SECONDS" strace -c -f -p "$GW_PID" -o "$TMP/strace.txt" 2>/dev/null || true
    sr1=$(gw_rows)
    wait "$st_h2" || die "h2load under strace exited $?: $(tail -5 "$TMP/strace-h2load.out")"
    echo "$(( sr1 - sr0 ))" > "$TMP/strace.rows"
fi
curl -sf "http://127.0.0.1:$FC_PORT/stats" > "$TMP/fc-stats2.json"
curl -sf "http://127.0.0.1:$GW_PORT/metrics" > "$TMP/metrics.txt"

kill -TERM "$GW_PID"
gw_rc=0
wait "$GW_PID" || gw_rc=$?
GW_PID=
[ "$gw_rc" -eq 0 ] || die "gateway exited $gw_rc on SIGTERM: $(tail -20 "$TMP/infergate.log")"

# ---- h2 floor: the same load against an nghttp2 server that does nothing else -----

FL_BIN=$TMP/h2-floor
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$FL_BIN" load/h2-floor.c \
    -lnghttp2 -levent -ljemalloc || die "cannot compile load/h2-floor.c"
"$FL_BIN" --hold-us "$FLOOR_HOLD_US" "$TMP/response.csv" > "$TMP/h2-floor.out" 2> "$TMP/h2-floor.log" &
FL_PID=$!
wait_listening FL_PORT "$FL_PID" "$TMP/h2-floor.out" h2-floor 100
FL_URL="http://127.0.0.1:$FL_PORT/endpoints/bench/invocations"
code=$(curl -s --http2-prior-knowledge -o "$TMP/floor.csv" -w '%{http_code}' \
    -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "$FL_URL")
[ "$code" = 200 ] && cmp -s "$TMP/floor.csv" "$TMP/response.csv" \
    || die "h2-floor answered $code '$(cat "$TMP/floor.csv")', not the gateway's answer"
fl_count() { curl -sf --http2-prior-knowledge "http://127.0.0.1:$FL_PORT/"; }
measured_run floor "$FL_URL" "$FL_PID" fl_count
kill -TERM "$FL_PID"
fl_rc=0
wait "$FL_PID" || fl_rc=$?
FL_PID=
[ "$fl_rc" -eq 0 ] || die "h2-floor exited $fl_rc on SIGTERM: $(cat "$TMP/h2-floor.log")"

# ---- report ------------------------------------------------------------------------

echo "bench-upstream: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr)"
echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include load/fake-container 2>/dev/null)" ] || echo ' + uncommitted src/include/fake-container changes'), $(h2load --version | head -1), load average before: $LOADAVG"
echo "  load (both): h2load -D $DURATION --warm-up-time $WARMUP -c $CLIENTS -m $STREAMS -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' ($((CLIENTS * STREAMS)) requests outstanding)"
echo "  row: $(tr -d '\n' < "$TMP/row.csv")  ->  response ($RESP_BYTES bytes, same from both): $(tr -d '\n' < "$TMP/response.csv")"
echo "  container: bin/fake-container --latency-us $LATENCY_US --per-row-us $PER_ROW_US --max-concurrent $MAX_CONCURRENT (h2c for direct; the gateway's calls over $([ "$UPSTREAM_HTTP2" = on ] && echo 'h2c' || echo 'HTTP/1.1 keep-alive'))"
echo "  gateway endpoint: max_batch_rows $MAX_BATCH_ROWS, max_delay_us $MAX_DELAY_US, max_inflight $MAX_INFLIGHT, upstream_http2 $UPSTREAM_HTTP2, workers $WORKERS$([ "$WORKERS" != 0 ] || echo ' (one per CPU)')"
echo "  h2 floor: load/h2-floor --hold-us $FLOOR_HOLD_US (nghttp2 $(pkg-config --modversion libnghttp2 2>/dev/null || echo '?'), libevent, jemalloc; the same answer bytes and headers, no other work)"
echo

"$PY" - "$TMP" "$DURATION" <<'EOF'
import json
import math
import os
import re
import sys

tmp, duration = sys.argv[1], int(sys.argv[2])


def stats(label):
    with open("%s/%s.out" % (tmp, label)) as f:
        out = f.read()
    m = re.search(r"^finished in [^,]+, ([0-9.]+) req/s", out, re.M)
    if not m:
        sys.exit("bench-upstream: BROKEN RUN: no req/s in h2load output for " + label)
    lat = []
    with open("%s/%s.requests" % (tmp, label)) as f:
        for line in f:
            lat.append(int(line.split("\t")[2]))
    lat.sort()
    n = len(lat)

    def pct(p):  # nearest rank
        return lat[max(0, math.ceil(p / 100.0 * n) - 1)] / 1000.0

    return {"rps": float(m.group(1)), "n": n, "p50": pct(50), "p99": pct(99),
            "max": lat[-1] / 1000.0}


def fc(i):
    with open("%s/fc-stats%d.json" % (tmp, i)) as f:
        return json.load(f)


direct, gw, floor = stats("direct"), stats("infergate"), stats("floor")
with open("%s/infergate.cpu" % tmp) as f:
    cpu_us, rows, wall_us, user_us, sys_us = (int(v) for v in f.read().split())
with open("%s/floor.cpu" % tmp) as f:
    fl_cpu_us, fl_reqs, fl_wall_us, fl_user_us, fl_sys_us = (int(v) for v in f.read().split())
s0, s1, s2 = fc(0), fc(1), fc(2)
calls_direct, calls_gw = s1["calls"] - s0["calls"], s2["calls"] - s1["calls"]
rows_gw = s2["rows"] - s1["rows"]

print("%-10s %9s %9s %8s %8s %8s" % ("target", "rows/s", "requests", "p50 ms", "p99 ms", "max ms"))
for label, s in (("direct", direct), ("infergate", gw), ("h2 floor", floor)):
    print("%-10s %9.0f %9d %8.3f %8.3f %8.3f" % (label, s["rps"], s["n"], s["p50"], s["p99"],
                                                s["max"]))
ratio = gw["rps"] / direct["rps"]
per_row = cpu_us / rows if rows else float("inf")


def cpus(label):
    with open("%s/%s.cpus" % (tmp, label)) as f:
        fc_us, h2_us, wall = (int(v) for v in f.read().split())
    return fc_us / wall, h2_us / wall


print()
print("CPUs used (CPU time / wall time of the h2load run, warm-up included; %d CPUs here):"
      % os.cpu_count())
for label in ("direct", "infergate", "floor"):
    fc_c, h2_c = cpus(label)
    extra = ""
    if label == "infergate":
        extra = ", infergate %.2f" % (cpu_us / wall_us)
    elif label == "floor":
        extra = ", h2-floor %.2f" % (fl_cpu_us / fl_wall_us)
    print("  %-9s h2load %.2f, container %.2f%s" % (label, h2_c, fc_c, extra))
print("container calls: direct %d (%d rows), through infergate %d (%d rows, %.1f rows per call)"
      % (calls_direct, s1["rows"] - s0["rows"], calls_gw, rows_gw,
         rows_gw / calls_gw if calls_gw else 0.0))
print("infergate CPU: %.3f s user+system over %d rows in %.1f s (%.2f CPUs): %.2f us per row"
      % (cpu_us / 1e6, rows, wall_us / 1e6, cpu_us / wall_us, per_row))
print("  of which user %.2f us, system %.2f us per row"
      % (user_us / rows if rows else 0.0, sys_us / rows if rows else 0.0))
fl_per = fl_cpu_us / fl_reqs if fl_reqs else float("inf")
print("h2 floor CPU: %.3f s user+system over %d requests (%.2f CPUs): %.2f us per request"
      % (fl_cpu_us / 1e6, fl_reqs, fl_cpu_us / fl_wall_us, fl_per))
print("  of which user %.2f us, system %.2f us; the gateway's CPU per row above it: %.2f us"
      % (fl_user_us / fl_reqs if fl_reqs else 0.0, fl_sys_us / fl_reqs if fl_reqs else 0.0,
         per_row - fl_per))
if os.path.exists("%s/strace.rows" % tmp):
    with open("%s/strace.rows" % tmp) as f:
        srows = int(f.read())
    calls = []
    with open("%s/strace.txt" % tmp) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[3].isdigit() and p[-1] != "total":
                calls.append((int(p[3]), p[-1]))
    total = sum(c for c, _ in calls)
    print("system calls (STRACE=1, strace -c -f over %d rows): %.3f per row: %s"
          % (srows, total / max(1, srows),
             ", ".join("%s %.3f" % (n, c / max(1, srows)) for c, n in sorted(calls, reverse=True)[:8])))
print()
print("ratio infergate/direct rows/s: %.1f   target >= 50: %s"
      % (ratio, "MET" if ratio >= 50 else "MISSED"))
print("infergate p99: %.3f ms   target < 20 ms: %s" % (gw["p99"], "MET" if gw["p99"] < 20 else "MISSED"))
print("infergate CPU per row: %.2f us   target < 2 us: %s"
      % (per_row, "MET" if per_row < 2 else "MISSED"))
print()
print("rows/s: h2load's req/s over the %d s measured (warm-up excluded), one row per request.\n"
      "p50/p99/max: nearest rank over every measured request in h2load's --log-file.\n"
      "CPU per row: the gateway's utime+stime (/proc/PID/stat, all threads) over the whole h2load\n"
      "  run, warm-up included, / the rows its /metrics counted over the same interval;\n"
      "  the floor's the same over the requests it answered (its GET count).\n"
      "h2 floor: one request a row as for the gateway; not a target, the cost of HTTP/2 by nghttp2\n"
      "  at this load under everything the gateway does."
      % duration)
EOF

# ---- CALLGRIND=1: where the gateway's CPU goes, in instructions per row -------------

[ "${CALLGRIND:-0}" = 1 ] || exit 0
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null \
    || die "CALLGRIND=1 needs valgrind and callgrind_annotate (make deps installs them)"

# The gateway under callgrind as a whole process (start-up, N requests, SIGTERM
# drain), workers = 1, the same endpoint and container, driven by
#   h2load -n N -c 16 -m 32 -d ROW.csv (the same headers)
# for N = CG_N1 and CG_N2; everything but the requests is the same in both, so
# (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal instructions per row (user
# space, every thread and library; not the kernel).
CG_N1=${CG_N1:-10000}
CG_N2=${CG_N2:-40000}
[[ "$CG_N1" =~ ^[1-9][0-9]*$ && "$CG_N2" =~ ^[1-9][0-9]*$ ]] && [ "$CG_N1" -lt "$CG_N2" ] \
    || { echo "bench-upstream: CG_N1 and CG_N2 must be positive integers, CG_N1 < CG_N2" >&2; exit 2; }
# h2load -n $1 against URL $2 (output to $3): every response must be 2xx.
cg_load() {
    h2load -n "$1" -c 16 -m 32 -d "$TMP/row.csv" -H 'content-type: text/csv' -H 'accept: text/csv' \
        "$2" > "$3" 2>&1 || die "h2load under callgrind ($3) exited $?"
    grep -qE "^status codes: $1 2xx" "$3" \
        || die "callgrind run $3: not every response 2xx: $(grep -E '^(requests|status)' "$3")"
}
# SIGTERM to the process whose pid the variable named $1 holds, which must
# exit 0; then its self instructions by function from callgrind file $2 to $3.
cg_stop() {
    local pid=${!1} rc=0
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    printf -v "$1" '%s' ''
    [ "$rc" -eq 0 ] || die "$2: the process under callgrind exited $rc on SIGTERM"
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$2" > "$3"
}
cg_run() {
    local n=$1 port
    port=$(free_port)
    sed -e "s/^listen = .*/listen = 127.0.0.1:$port/" -e 's/^workers = .*/workers = 1/' \
        "$TMP/infergate.conf" > "$TMP/cg.$n.conf"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.$n.out" \
        "$IG_BIN" --config "$TMP/cg.$n.conf" > "$TMP/cg.$n.log" 2>&1 &
    GW_PID=$!
    for _ in $(seq 600); do
        kill -0 "$GW_PID" 2>/dev/null || die "gateway under callgrind exited: $(tail -5 "$TMP/cg.$n.log")"
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
        sleep 0.1
    done
    cg_load "$n" "http://127.0.0.1:$port/endpoints/bench/invocations" "$TMP/cg.$n.out"
    curl -sf "http://127.0.0.1:$port/metrics" > "$TMP/cg.$n.metrics"
    cg_stop GW_PID "$TMP/callgrind.$n.out" "$TMP/cg-self.$n.txt"
}
# The floor the same way: h2-floor under callgrind, the same h2load -n N.
cg_floor_run() {
    local n=$1 port
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind-floor.$n.out" \
        "$FL_BIN" --hold-us "$FLOOR_HOLD_US" "$TMP/response.csv" > "$TMP/cgf.$n.out" 2> "$TMP/cgf.$n.log" &
    FL_PID=$!
    wait_listening port "$FL_PID" "$TMP/cgf.$n.out" "cgf.$n" 600
    cg_load "$n" "http://127.0.0.1:$port/endpoints/bench/invocations" "$TMP/cgf.$n.h2load"
    cg_stop FL_PID "$TMP/callgrind-floor.$n.out" "$TMP/cgf-self.$n.txt"
}
cg_run "$CG_N1"
cg_run "$CG_N2"
cg_floor_run "$CG_N1"
cg_floor_run "$CG_N2"
echo
echo "callgrind: $(valgrind --version), gateway with workers 1 under valgrind --tool=callgrind,"
echo "  h2load -n N -c 16 -m 32 (the same row and headers), N = $CG_N1 and $CG_N2"
"$PY" - "$TMP" "$CG_N1" "$CG_N2" <<'EOF'
import re
import sys

tmp, n1, n2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def parse(n, prefix="cg-self"):
    total, funcs = None, {}
    with open("%s/%s.%d.txt" % (tmp, prefix, n)) as f:
        for line in f:
            m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
            if not m:
                continue
            v, name = int(m.group(1).replace(",", "")), m.group(2).strip()
            if "PROGRAM TOTALS" in name:
                total = v
            else:
                funcs[name] = funcs.get(name, 0) + v
    calls = 0
    if prefix != "cg-self":
        return total, funcs, calls
    with open("%s/cg.%d.metrics" % (tmp, n)) as f:
        for line in f:
            if line.startswith('infergate_upstream_calls_total{endpoint="bench"}'):
                calls = int(float(line.split()[1]))
    return total, funcs, calls


t1, f1, c1 = parse(n1)
t2, f2, c2 = parse(n2)
rows = n2 - n1
print("marginal instructions per row: (%d - %d) / %d = %.0f  (%.1f rows per container call)"
      % (t2, t1, rows, (t2 - t1) / rows, rows / max(1, c2 - c1)))
ft1, ff1, _ = parse(n1, "cgf-self")
ft2, ff2, _ = parse(n2, "cgf-self")
print("the h2 floor (h2-floor under callgrind, the same load): (%d - %d) / %d = %.0f per request"
      % (ft2, ft1, rows, (ft2 - ft1) / rows))


def by_object(a, b):
    objs = {}
    for k in set(a) | set(b):
        m = re.search(r"\[(.*?)\]$", k)
        o = m.group(1).rsplit("/", 1)[-1] if m else "(unknown object)"
        objs[o] = objs.get(o, 0) + b.get(k, 0) - a.get(k, 0)
    return objs


objs, fobjs = by_object(f1, f2), by_object(ff1, ff2)
print("by object file, marginal instructions per row (the floor's per request beside them):")
for o, v in sorted(objs.items(), key=lambda x: -x[1])[:8]:
    print("  %8.0f  %-28s floor %6.0f" % (v / rows, o, fobjs.get(o, 0) / rows))
print("top functions, marginal self instructions per row:")
diff = sorted(((f2.get(k, 0) - f1.get(k, 0), k) for k in set(f1) | set(f2)), reverse=True)
for v, k in diff[:15]:
    print("  %8.0f  %s" % (v / rows, k[:100]))
EOF
