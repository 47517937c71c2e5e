#!/usr/bin/env bash
# load/bench-stream.sh - the streaming transform (POST /transform/NAME)
# against its compute floor.
#
# One run does, on a free loopback port:
#   1. the input: ROWS CSV rows of 10 features ("%.4f" values in [-10, 10],
#      deterministic), written by `stream-floor gen` (a C loop) and cached
#      as /tmp/ig-stream-v1-ROWS.csv;
#   2. the compute floor: load/stream-floor.c, compiled here with the
#      Makefile's flags and linked against build/rel/libinfergate.a (so it
#      runs the gateway's own code: ig_codec_decode_csv, ig_model_predict_row
#      of load/models/bench-kmeans-10.json, ig_codec_encode_response),
#      single-threaded, no network: read the file in 1 MiB pieces, decode,
#      predict, encode, write to /dev/null. FLOOR_RUNS timed runs (median),
#      plus one untimed run writing the reference predictions to a file; the
#      first 200 of those are checked against an independent computation
#      (Python, the model's arithmetic);
#   3. bin/infergate with endpoint `bench` (that model, embedded), driven by
#        1 stream:  bin/infergate-cli transform --url http://127.0.0.1:PORT \
#                       --endpoint bench IN OUT
#                   over the whole file;
#        N streams: STREAMS (8) such processes at once, each over its own
#                   part of the file (split -n l/STREAMS beforehand, outside
#                   the timing).
#      A fresh gateway for each of the two, so its VmHWM (peak RSS, from
#      /proc/PID/status, read before SIGTERM) is that run's own. Every
#      client must exit 0 and every output must equal the floor's
#      predictions byte for byte (the N parts concatenated in order).
#   4. unless ROWS_CALLGRIND=0: the gateway under valgrind --tool=callgrind
#      serving one stream of ROWS_CALLGRIND rows and one of a quarter of
#      that; the difference gives the gateway's instructions per row (all
#      its threads, user space, start-up and shutdown cancelled out); the
#      floor the same way.
# It prints the exact commands, rows/s, the gateway's CPU (user + system,
# per row, its busiest threads) and VmHWM, the clients' CPU and peak RSS,
# the machine's busy CPUs during each run (others' work shows there), the
# ratio gateway/floor and floor/gateway, and the targets: at least
# 2,000,000 rows/s on this 2-CPU machine and within 3x of the floor.
#
# Exit status: 0 on a complete run (a missed target is reported, not an
# error); 1 on a broken run (bin/infergate-cli missing, a client that did
# not exit 0, an output that differs from the floor's, a gateway that died
# or did not exit 0 on SIGTERM); 2 on bad usage. FLOOR_ONLY=1 measures the
# floor alone (exit 0). Everything started here is stopped on exit.
#
# Environment: ROWS (10000000), STREAMS (8), FLOOR_RUNS (3), CHUNK (the
# floor's piece, bytes, 1048576), ROWS_CALLGRIND (20000; 0 = skip), WORKERS
# (0: one per CPU), and the endpoint's MAX_BATCH_ROWS, MAX_DELAY_US,
# MAX_INFLIGHT (unset: the gateway's defaults); KEEP=1 keeps the temporary
# directory (config, logs, outputs); CLI=PATH runs another client taking
# infergate-cli's arguments (to test this script).
set -euo pipefail

usage() {
    echo "usage: [ROWS=N] [STREAMS=N] [FLOOR_RUNS=N] [CHUNK=BYTES] [ROWS_CALLGRIND=N] [WORKERS=N]" >&2
    echo "       [MAX_BATCH_ROWS=N] [MAX_DELAY_US=N] [MAX_INFLIGHT=N] [FLOOR_ONLY=1] [KEEP=1] $0" >&2
    exit 2
}
[ $# -eq 0 ] || usage

ROWS=${ROWS:-10000000}
STREAMS=${STREAMS:-8}
FLOOR_RUNS=${FLOOR_RUNS:-3}
CHUNK=${CHUNK:-1048576}
ROWS_CALLGRIND=${ROWS_CALLGRIND:-20000}
WORKERS=${WORKERS:-0}
FLOOR_ONLY=${FLOOR_ONLY:-0}
for v in "$ROWS" "$STREAMS" "$FLOOR_RUNS" "$CHUNK"; do
    [[ "$v" =~ ^[1-9][0-9]{0,11}$ ]] || usage
done
for v in "$ROWS_CALLGRIND" "$WORKERS" ${MAX_BATCH_ROWS:+"$MAX_BATCH_ROWS"} \
    ${MAX_DELAY_US:+"$MAX_DELAY_US"} ${MAX_INFLIGHT:+"$MAX_INFLIGHT"}; do
    [[ "$v" =~ ^[0-9]{1,11}$ ]] || usage
done
[[ "$FLOOR_ONLY" =~ ^[01]$ ]] || usage
[ "$ROWS" -ge "$STREAMS" ] || { echo "bench-stream: ROWS must be at least STREAMS" >&2; exit 2; }
[ "$ROWS_CALLGRIND" = 0 ] || { [ "$ROWS_CALLGRIND" -ge 8 ] && [ "$ROWS_CALLGRIND" -le "$ROWS" ]; } \
    || { echo "bench-stream: ROWS_CALLGRIND must be 0 or from 8 to ROWS ($ROWS)" >&2; exit 2; }
PY=/usr/bin/python3

cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=$ROOT/load/models/bench-kmeans-10.json
# CLI: another client with infergate-cli's arguments (for testing this script).
CLI=${CLI:-$ROOT/bin/infergate-cli}
DATA=/tmp/ig-stream-v1-$ROWS.csv
ENDPOINT=bench

for tool in cc pkg-config curl split "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-stream: $tool not found (make deps installs it)" >&2; exit 1; }
done
if [ "$ROWS_CALLGRIND" != 0 ] && [ "$FLOOR_ONLY" = 0 ]; then
    for tool in valgrind callgrind_annotate; do
        command -v "$tool" >/dev/null || { echo "bench-stream: $tool not found (make deps installs it; ROWS_CALLGRIND=0 skips it)" >&2; exit 1; }
    done
fi
[ -f "$MODEL" ] || { echo "bench-stream: $MODEL missing (load/models/gen_bench_model.py writes it)" >&2; exit 1; }
if [ ! -x bin/infergate ] || [ ! -f build/rel/libinfergate.a ]; then
    echo "bench-stream: bin/infergate or build/rel/libinfergate.a missing, running make" >&2
    make --no-print-directory all >&2 || { echo "bench-stream: make failed" >&2; exit 1; }
elif [ ! -x "$CLI" ] && [ "$FLOOR_ONLY" = 0 ]; then
    # make builds bin/infergate-cli when src/cli/ has sources.
    echo "bench-stream: bin/infergate-cli missing, running make" >&2
    make --no-print-directory all >&2 || echo "bench-stream: make failed" >&2
fi

TMP=$(mktemp -d /tmp/ig-bench-stream.XXXXXX)
GW_PID=''
CL_PID=''
stop_pid() {
    local pid=$1
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    local rc=$?
    # The client runner first (it stops its clients on SIGTERM), then the gateway.
    stop_pid "$CL_PID"
    stop_pid "$GW_PID"
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-stream: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-stream: BROKEN RUN: $*" >&2; exit 1; }

# "BUSY TOTAL" ticks of the whole machine, all CPUs (/proc/stat: total
# without idle and iowait, and total).
machine_ticks() {
    awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the floor: build, input, reference, timed runs --------------------------

# The Makefile's release flags and libraries (its PKGS, WARN, LDLIBS with
# jemalloc), so the floor is compiled as the gateway is.
read -ra PKG_CFLAGS <<<"$(make -s --no-print-directory print-PKG_CFLAGS)" || true
read -ra LDLIBS <<<"$(make -s --no-print-directory print-LDLIBS)" || true
[ "${#LDLIBS[@]}" -gt 0 ] || die "cannot read LDLIBS from the Makefile"
FLOOR=$TMP/stream-floor
FLOOR_CC=(cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wmissing-declarations -Wundef -Wformat=2 -Wwrite-strings -Wvla
    -Wpointer-arith -Wimplicit-fallthrough -Iinclude -Ibuild/rel/gen "${PKG_CFLAGS[@]}"
    -o "$FLOOR" load/stream-floor.c build/rel/libinfergate.a
    "${LDLIBS[@]}")
"${FLOOR_CC[@]}" || die "cannot compile load/stream-floor.c"

if [ ! -f "$DATA" ] || [ "$(wc -l < "$DATA")" != "$ROWS" ]; then
    echo "bench-stream: writing $DATA ($ROWS rows)" >&2
    "$FLOOR" gen "$ROWS" "$DATA" || die "stream-floor gen failed"
fi
[ "$(wc -l < "$DATA")" = "$ROWS" ] || die "$DATA does not hold $ROWS lines"
DATA_BYTES=$(stat -c %s "$DATA")
cat "$DATA" > /dev/null # into the page cache, for every side alike

# The reference predictions (untimed, written to a file).
"$FLOOR" run -c "$CHUNK" "$MODEL" "$DATA" "$TMP/floor.csv" > "$TMP/floor-ref.txt" \
    || die "stream-floor run failed: $(cat "$TMP/floor-ref.txt")"
[ "$(wc -l < "$TMP/floor.csv")" = "$ROWS" ] || die "the floor wrote $(wc -l < "$TMP/floor.csv") predictions for $ROWS rows"

# The first 200 predictions, computed independently from the model file.
"$PY" - "$MODEL" "$DATA" "$TMP/floor.csv" <<'EOF' || die "the floor's predictions differ from the model's arithmetic"
import json
import math
import sys

with open(sys.argv[1]) as f:
    model = json.load(f)
cents = model["centroids"]


def sqdist(x, c):  # model.c's model_sqdist: four accumulators
    s = [0.0, 0.0, 0.0, 0.0]
    n4 = len(x) - len(x) % 4
    for i in range(0, n4, 4):
        for j in range(4):
            d = x[i + j] - c[i + j]
            s[j] += d * d
    for i in range(n4, len(x)):
        d = x[i] - c[i]
        s[0] += d * d
    return (s[0] + s[1]) + (s[2] + s[3])


with open(sys.argv[2]) as fin, open(sys.argv[3]) as fout:
    for n in range(200):
        row, got = fin.readline(), fout.readline()
        if not row:
            break
        x = [float(v) for v in row.split(",")]
        best, besti = None, 0
        for j, c in enumerate(cents):
            d = sqdist(x, c)
            if best is None or d < best:
                best, besti = d, j
        want = "%r,%r\n" % (float(besti), math.sqrt(best))
        if got != want:
            sys.exit("line %d: the floor wrote %r, the model's arithmetic gives %r" % (n + 1, got, want))
EOF

machine_ticks > "$TMP/floor.machine0"
for i in $(seq "$FLOOR_RUNS"); do
    "$FLOOR" run -c "$CHUNK" "$MODEL" "$DATA" /dev/null > "$TMP/floor-$i.txt" \
        || die "stream-floor run failed: $(cat "$TMP/floor-$i.txt")"
done
machine_ticks > "$TMP/floor.machine1"

print_header() {
    echo "bench-stream: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr)"
    echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include 2>/dev/null)" ] || echo ' + uncommitted src/include changes'), bin/infergate built $(date -u -r bin/infergate '+%Y-%m-%d %H:%M UTC'), load average before: $LOADAVG"
    echo "  input: $DATA: $ROWS rows, $DATA_BYTES bytes, 10 features a row (stream-floor gen, cached)"
    echo "  model: load/models/bench-kmeans-10.json, embedded K-Means k=10 D=10; every answer 'CLUSTER.0,DISTANCE'"
    echo "  floor: $FLOOR run -c $CHUNK $MODEL $DATA /dev/null   ($FLOOR_RUNS runs, median; single thread)"
    echo "         built with: ${FLOOR_CC[*]}"
}

if [ "$FLOOR_ONLY" = 1 ] || [ ! -x "$CLI" ]; then
    print_header
    echo
    "$PY" - "$TMP" "$FLOOR_RUNS" <<'EOF'
import statistics
import sys

tmp, runs = sys.argv[1], int(sys.argv[2])
rates = []
for i in range(1, runs + 1):
    with open("%s/floor-%d.txt" % (tmp, i)) as f:
        line = f.read().strip()
    kv = dict(p.split("=", 1) for p in line.split())
    rates.append(float(kv["rows_per_s"]))
    print("floor run %d: %s" % (i, line))
print("floor: %s rows/s (median of %d)" % (format(round(statistics.median(rates)), ","), runs))
EOF
    if [ "$FLOOR_ONLY" = 1 ]; then
        exit 0
    fi
    rm -f "$TMP/floor.csv"
    die "$CLI is missing (make all builds it from src/cli/ once the streaming transform client is in the tree): the gateway was not measured, only the floor above"
fi

# ---- the gateway --------------------------------------------------------------

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# "UTIME STIME" of a process, all threads, in microseconds.
cpu_us() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%d %d\n", $12 * 1000000 / hz, $13 * 1000000 / hz }' "/proc/$1/stat"
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
{
    echo "listen = 127.0.0.1:$PORT"
    echo "log_level = warn"
    echo "workers = $WORKERS"
    echo
    echo "[endpoint $ENDPOINT]"
    echo "model = file://$MODEL"
    [ -z "${MAX_BATCH_ROWS:-}" ] || echo "max_batch_rows = $MAX_BATCH_ROWS"
    [ -z "${MAX_DELAY_US:-}" ] || echo "max_delay_us = $MAX_DELAY_US"
    [ -z "${MAX_INFLIGHT:-}" ] || echo "max_inflight = $MAX_INFLIGHT"
} > "$TMP/infergate.conf"

# "TID TICKS" (utime + stime) for each thread of a process.
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        awk -v tid="${t##*/}" '{ sub(/^.*\) /, ""); print tid, $12 + $13 }' "$t/stat" 2>/dev/null || true
    done
}

# Start a gateway on $PORT ($1: a prefix for the command, e.g. valgrind ...;
# $2: the log), wait for GET /ping.
start_gateway() {
    local log=$2 tries=150
    # shellcheck disable=SC2086 # $1 is a word list on purpose
    $1 bin/infergate --config "$TMP/infergate.conf" > "$log" 2>&1 &
    GW_PID=$!
    [ -z "$1" ] || tries=600
    for _ in $(seq "$tries"); do
        kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at start-up: $(tail -20 "$log")"
        curl -sf -o /dev/null "$URL/ping" && return 0
        sleep 0.1
    done
    die "gateway did not answer GET /ping within $((tries / 10)) s"
}

stop_gateway() {
    local rc=0 log=$1
    kill -TERM "$GW_PID"
    wait "$GW_PID" || rc=$?
    GW_PID=
    [ "$rc" -eq 0 ] || die "gateway exited $rc on SIGTERM: $(tail -20 "$log")"
}

# Runs the clients: $1 = label, then IN OUT pairs; one infergate-cli
# process per pair, all at once. Writes $TMP/$label.json (wall seconds, the
# clients' CPU and peak RSS, exit codes).
cat > "$TMP/clients.py" <<'EOF'
import json
import resource
import signal
import subprocess
import sys
import time

result, cli, url, endpoint = sys.argv[1:5]
pairs = sys.argv[5:]
procs = []


def stop(*_):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    sys.exit(130)


signal.signal(signal.SIGTERM, stop)
t0 = time.perf_counter()
for i in range(0, len(pairs), 2):
    err = open("%s.stderr.%d" % (result, i // 2), "w")
    procs.append(subprocess.Popen([cli, "transform", "--url", url, "--endpoint", endpoint,
                                   pairs[i], pairs[i + 1]], stdin=subprocess.DEVNULL,
                                  stdout=err, stderr=err))
ends = []
for p in procs:
    p.wait()
    ends.append(time.perf_counter() - t0)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(result, "w") as f:
    json.dump({"wall": wall, "ends": ends, "rcs": [p.returncode for p in procs],
               "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, f)
EOF

# One measured run: $1 = label, then IN OUT pairs.
run_streams() {
    local label=$1 u0 s0 u1 s1 rc
    shift
    start_gateway "" "$TMP/$label.gateway.log"
    # What the gateway answers a three-row body on /transform (informative:
    # the client's run below decides).
    head -3 "$DATA" > "$TMP/probe.csv"
    code=$(curl -s --http2-prior-knowledge -o "$TMP/$label.probe.out" -w '%{http_code}' \
        -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/probe.csv" \
        "$URL/transform/$ENDPOINT" || true)
    if [ "$code" = 200 ] && cmp -s "$TMP/$label.probe.out" <(head -3 "$TMP/floor.csv"); then
        echo "probe ok" > "$TMP/$label.probe"
    else
        echo "curl --http2-prior-knowledge POST /transform/$ENDPOINT of 3 rows: $code $(head -c 300 "$TMP/$label.probe.out" 2>/dev/null | tr '\n' '|')" > "$TMP/$label.probe"
    fi
    machine_ticks > "$TMP/$label.machine0"
    read -r u0 s0 < <(cpu_us "$GW_PID")
    thread_ticks "$GW_PID" > "$TMP/$label.threads0"
    "$PY" "$TMP/clients.py" "$TMP/$label.json" "$CLI" "$URL" "$ENDPOINT" "$@" &
    CL_PID=$!
    rc=0
    wait "$CL_PID" || rc=$?
    CL_PID=
    [ "$rc" -eq 0 ] || die "the client runner exited $rc"
    kill -0 "$GW_PID" 2>/dev/null || die "$label: the gateway died during the run: $(tail -20 "$TMP/$label.gateway.log")"
    read -r u1 s1 < <(cpu_us "$GW_PID")
    machine_ticks > "$TMP/$label.machine1"
    thread_ticks "$GW_PID" > "$TMP/$label.threads1"
    echo "$GW_PID" > "$TMP/$label.pid"
    echo "$(( u1 - u0 )) $(( s1 - s0 )) $(awk '/^VmHWM:/ { print $2 }' "/proc/$GW_PID/status") $(awk '/^Threads:/ { print $2 }' "/proc/$GW_PID/status")" > "$TMP/$label.gw"
    stop_gateway "$TMP/$label.gateway.log"
    "$PY" - "$TMP/$label.json" "$TMP/$label.probe" <<'EOF' || exit 1
import json
import sys

with open(sys.argv[1]) as f:
    r = json.load(f)
bad = [(i, rc) for i, rc in enumerate(r["rcs"]) if rc != 0]
if bad:
    msgs = []
    for i, rc in bad[:3]:
        with open("%s.stderr.%d" % (sys.argv[1], i)) as f:
            msgs.append("client %d exited %d: %s" % (i, rc, f.read()[-600:].strip()))
    with open(sys.argv[2]) as f:
        probe = f.read().strip()
    sys.exit("bench-stream: BROKEN RUN: " + "; ".join(msgs) + " [" + probe + "]")
EOF
}

# Every output line-counted and compared with the floor's: $1 = label, then the
# outputs in input order.
check_outputs() {
    local label=$1 n=0 f lines
    shift
    for f in "$@"; do
        [ -f "$f" ] || die "$label: no output file $f"
        lines=$(wc -l < "$f")
        n=$((n + lines))
    done
    [ "$n" = "$ROWS" ] || die "$label: $n output lines for $ROWS input rows"
    if ! cat "$@" | cmp -s - "$TMP/floor.csv"; then
        local at
        at=$(cat "$@" | cmp - "$TMP/floor.csv" 2>&1 | sed -nE 's/.* line ([0-9]+).*/\1/p' || true)
        die "$label: the predictions differ from the floor's from line ${at:-?}: gateway '$(cat "$@" | sed -n "${at:-1}p")', floor '$(sed -n "${at:-1}p" "$TMP/floor.csv")'"
    fi
}

# 1 stream over the whole file.
run_streams one "$DATA" "$TMP/out1.csv"
check_outputs one "$TMP/out1.csv"
rm -f "$TMP/out1.csv"

# STREAMS streams, each over its own part (split at line boundaries).
split -n "l/$STREAMS" -d -a 3 "$DATA" "$TMP/part."
PAIRS=() OUTS=()
for i in $(seq 0 $((STREAMS - 1))); do
    p=$(printf '%03d' "$i")
    [ -f "$TMP/part.$p" ] || die "split wrote no part $p"
    PAIRS+=("$TMP/part.$p" "$TMP/out.$p")
    OUTS+=("$TMP/out.$p")
done
PART_ROWS=$(wc -l "$TMP"/part.* | awk '$2 != "total" { printf "%s%s", sep, $1; sep = "," }')
cat "$TMP"/part.* > /dev/null
run_streams many "${PAIRS[@]}"
check_outputs many "${OUTS[@]}"
rm -f "$TMP"/out.* "$TMP"/part.*

# ---- callgrind: instructions per row ---------------------------------------

CG_N2=$ROWS_CALLGRIND
CG_N1=$((ROWS_CALLGRIND / 4))
if [ "$ROWS_CALLGRIND" != 0 ]; then
    for n in "$CG_N1" "$CG_N2"; do
        head -n "$n" "$DATA" > "$TMP/cg.$n.csv"
        start_gateway "valgrind --tool=callgrind --callgrind-out-file=$TMP/callgrind.gateway.$n.out" \
            "$TMP/cg-gateway.$n.log"
        "$CLI" transform --url "$URL" --endpoint "$ENDPOINT" "$TMP/cg.$n.csv" "$TMP/cg.$n.out" \
            > "$TMP/cg-cli.$n.log" 2>&1 || die "callgrind run: infergate-cli exited $?: $(tail -5 "$TMP/cg-cli.$n.log")"
        kill -0 "$GW_PID" 2>/dev/null || die "the gateway under valgrind died: $(tail -20 "$TMP/cg-gateway.$n.log")"
        stop_gateway "$TMP/cg-gateway.$n.log"
        cmp -s "$TMP/cg.$n.out" <(head -n "$n" "$TMP/floor.csv") || die "callgrind run: the predictions of $n rows differ from the floor's"
        valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.floor.$n.out" \
            "$FLOOR" run -c "$CHUNK" "$MODEL" "$TMP/cg.$n.csv" /dev/null > "$TMP/cg-floor.$n.log" 2>&1 \
            || die "the floor under valgrind failed: $(tail -5 "$TMP/cg-floor.$n.log")"
        for w in gateway floor; do
            callgrind_annotate --inclusive=no --auto=no --threshold=100 "$TMP/callgrind.$w.$n.out" > "$TMP/self.$w.$n.txt"
        done
    done
fi

# ---- report ------------------------------------------------------------------

print_header
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg) (the machine's 2 CPUs are shared with whatever else runs: a floor below 1.00 CPUs was not alone)"
echo "  gateway: bin/infergate --config CONF, workers $WORKERS$([ "$WORKERS" != 0 ] || echo ' (one per CPU)'), endpoint $ENDPOINT: model = file://$MODEL, max_batch_rows ${MAX_BATCH_ROWS:-default}, max_delay_us ${MAX_DELAY_US:-default}, max_inflight ${MAX_INFLIGHT:-default}"
echo "  1 stream:  $CLI transform --url $URL --endpoint $ENDPOINT $DATA OUT"
echo "  $STREAMS streams: split -n l/$STREAMS -d -a 3 $DATA PART.   (rows per part: $PART_ROWS; outside the timing), then at once"
echo "             $CLI transform --url $URL --endpoint $ENDPOINT PART.NNN OUT.NNN   (NNN = 000..$(printf '%03d' $((STREAMS - 1))))"
echo "  checks: every client exited 0; output lines = input rows; the outputs (the parts' in order) equal the floor's predictions byte for byte"
echo "  probe (informative): 1 stream: $(cat "$TMP/one.probe"); $STREAMS streams: $(cat "$TMP/many.probe")"
echo

"$PY" - "$TMP" "$FLOOR_RUNS" "$ROWS" "$STREAMS" "$ROWS_CALLGRIND" "$CG_N1" "$CG_N2" <<'EOF'
import json
import os
import re
import statistics
import sys

tmp = sys.argv[1]
runs, rows, streams, cg, n1, n2 = (int(v) for v in sys.argv[2:])
TARGET_RPS, TARGET_X = 2_000_000, 3.0


def fmt(v):
    return format(round(v), ",")


def per_cpu_s(us_row):  # rows per CPU second; CPU time is counted in ticks
    return fmt(1e6 / us_row) if us_row > 0 else "-"


floor = []
for i in range(1, runs + 1):
    with open("%s/floor-%d.txt" % (tmp, i)) as f:
        line = f.read().strip()
    floor.append(dict((k, float(v)) for k, v in (p.split("=", 1) for p in line.split())))
floor.sort(key=lambda r: r["rows_per_s"])
fm = floor[len(floor) // 2]  # the median run (the upper one of an even count)
floor_rps = statistics.median(r["rows_per_s"] for r in floor)


def machine(label):
    """CPUs busy on the whole machine during the run (all processes)."""
    v = []
    for i in (0, 1):
        with open("%s/%s.machine%d" % (tmp, label, i)) as f:
            v.append([int(x) for x in f.read().split()])
    dt = v[1][1] - v[0][1]
    return (v[1][0] - v[0][0]) / dt * os.cpu_count() if dt > 0 else 0.0


def gateway(label):
    with open("%s/%s.json" % (tmp, label)) as f:
        r = json.load(f)
    with open("%s/%s.gw" % (tmp, label)) as f:
        user_us, sys_us, hwm_kib, threads = (int(v) for v in f.read().split())
    cpu_us = user_us + sys_us
    rps = rows / r["wall"]
    ticks = {}
    for i in (0, 1):
        with open("%s/%s.threads%d" % (tmp, label, i)) as f:
            for line in f:
                tid, t = line.split()
                ticks.setdefault(tid, [0, 0])[i] = int(t)
    with open("%s/%s.pid" % (tmp, label)) as f:
        pid = f.read().strip()
    hz = os.sysconf("SC_CLK_TCK")
    per = sorted(((t1 - t0) / hz / r["wall"], tid == pid) for tid, (t0, t1) in ticks.items())[::-1]
    return {"machine": machine(label), "threads_cpu": per, "rps": rps, "wall": r["wall"], "cpus": cpu_us / 1e6 / r["wall"],
            "us_row": cpu_us / rows, "sys_row": sys_us / rows, "hwm": hwm_kib / 1024.0, "threads": threads,
            "ccpus": r["cpu"] / r["wall"], "crss": r["maxrss_kib"] / 1024.0,
            "spread": (min(r["ends"]), max(r["ends"]))}


one, many = gateway("one"), gateway("many")
print("%-20s %11s %8s %10s %5s %14s %10s %8s %7s %7s" % (
    "run", "rows", "seconds", "rows/s", "CPUs", "us/row (sys)", "rows/CPU-s", "peak MiB",
    "cl CPUs", "cl MiB"))
print("%-20s %11s %8.3f %10s %5.2f %14s %10s %8.1f %7s %7s" % (
    "floor (1 thread)", fmt(rows), fm["seconds"], fmt(floor_rps), fm["cpu_s"] / fm["seconds"],
    "%.3f (%.3f)" % (fm["cpu_s"] * 1e6 / rows, fm["sys_s"] * 1e6 / rows), per_cpu_s(fm["cpu_s"] * 1e6 / rows),
    fm["maxrss_kib"] / 1024.0, "-", "-"))
for label, s in (("gateway, 1 stream", one), ("gateway, %d streams" % streams, many)):
    print("%-20s %11s %8.3f %10s %5.2f %14s %10s %8.1f %7.2f %7.1f" % (
        label, fmt(rows), s["wall"], fmt(s["rps"]), s["cpus"],
        "%.3f (%.3f)" % (s["us_row"], s["sys_row"]), per_cpu_s(s["us_row"]), s["hwm"],
        s["ccpus"], s["crss"]))
print("(CPUs, us/row (CPU; system part in brackets), rows/CPU-s, peak MiB: of the floor's\n"
      " process or of the gateway's, all threads (peak: its VmHWM in /proc/PID/status);\n"
      " cl: all infergate-cli processes together, CPU time / wall time, and the largest peak RSS)")
print()
print("floor runs (rows/s): %s; the median run's phases: read %.3f s, decode %.3f s, "
      "predict %.3f s, encode+write %.3f s"
      % (", ".join(fmt(r["rows_per_s"]) for r in floor), fm["read_s"], fm["decode_s"],
         fm["predict_s"], fm["encode_write_s"]))
print("%d streams: the first client finished after %.3f s, the last after %.3f s"
      % (streams, many["spread"][0], many["spread"][1]))
print("machine CPUs busy (all processes, of %d): during the floor runs %.2f, 1 stream %.2f, "
      "%d streams %.2f" % (os.cpu_count(), machine("floor"), one["machine"], streams, many["machine"]))
for label, s in (("1 stream", one), ("%d streams" % streams, many)):
    print("gateway threads, %s: CPUs of the busiest: %s (of %d threads; * = the main thread)"
          % (label, ", ".join("%.2f%s" % (c, "*" if main else "") for c, main in s["threads_cpu"][:5]),
             len(s["threads_cpu"])))
print()
for label, s in (("1 stream", one), ("%d streams" % streams, many)):
    g_f = s["rps"] / floor_rps
    print("%-10s gateway/floor rows/s = %.3f, floor/gateway = %.2f;  target >= %s rows/s: %s;"
          "  target within %.0fx of the floor: %s"
          % (label, g_f, 1 / g_f, fmt(TARGET_RPS), "MET" if s["rps"] >= TARGET_RPS else "MISSED",
             TARGET_X, "MET" if 1 / g_f <= TARGET_X else "MISSED"))
    if fm["cpu_s"] > 0:
        print("%-10s CPU per row, gateway/floor = %.2f" % ("", s["us_row"] / (fm["cpu_s"] * 1e6 / rows)))

if cg:
    print()

    def total_ir(what, n):
        found = {}
        with open("%s/callgrind.%s.%d.out" % (tmp, what, n)) as f:
            for line in f:
                for key in ("summary:", "totals:"):
                    if line.startswith(key) and key not in found:
                        found[key] = int(line.split()[1])
        if not found:
            sys.exit("bench-stream: BROKEN RUN: no summary/totals line in callgrind.%s.%d.out" % (what, n))
        return found.get("summary:", found.get("totals:"))

    LINE = re.compile(r"^\s*([0-9,]+)\s+\(\s*([0-9.]+)%\)\s+(.*)$")

    def marginal(what):
        d = {}
        for sign, n in ((-1, n1), (1, n2)):
            body = False
            with open("%s/self.%s.%d.txt" % (tmp, what, n)) as f:
                for line in f:
                    if "file:function" in line:
                        body = True
                        continue
                    m = LINE.match(line) if body else None
                    if m:
                        name = m.group(3).strip()
                        d[name] = d.get(name, 0) + sign * int(m.group(1).replace(",", ""))
        return {k: v / (n2 - n1) for k, v in d.items()}

    per = {}
    for what in ("gateway", "floor"):
        i1, i2 = total_ir(what, n1), total_ir(what, n2)
        per[what] = (i2 - i1) / (n2 - n1)
        print("callgrind %-7s: Ir %s (%d rows), %s (%d rows): %s instructions per row"
              % (what, fmt(i1), n1, fmt(i2), n2, fmt(per[what])))
    print("instructions per row, gateway / floor: %.2f  (one stream, whole processes, user space;"
          " the client is not counted)" % (per["gateway"] / per["floor"]))
    objs = {}
    marg = marginal("gateway")
    for name, v in marg.items():
        m = re.search(r"\[([^\]]+)\]$", name)
        obj = m.group(1).rsplit("/", 1)[-1] if m else "(other)"
        objs[obj] = objs.get(obj, 0) + v
    print("gateway Ir per row by object: " + ", ".join(
        "%s %s" % (o, fmt(v)) for o, v in sorted(objs.items(), key=lambda kv: -kv[1]) if v >= 0.5))
    print("gateway top functions by Ir per row (self):")
    for name, v in sorted(marg.items(), key=lambda kv: -kv[1])[:12]:
        print("  %9s  %s" % (fmt(v), re.sub(r"^/.*?/src/", "src/", name)))
EOF
