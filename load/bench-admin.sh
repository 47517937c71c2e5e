#!/usr/bin/env bash
# load/bench-admin.sh - the admin API (SageMaker's control plane on the
# embedded Redis): calls per second, and InvokeEndpoint while endpoints are
# created, updated and deleted.
#
# One run does, on free loopback ports, with one bin/infergate (built with
# `make` if missing) whose job store is the embedded redis-server it starts
# in a temporary data_dir (admin_auth off):
#   1. load/admin-load.py setup: models bench-a (tests/data/kmeans-2d.json,
#      built-in kmeans, 2 features) and bench-b (the same shape, other
#      centroids: another answer), configs cfg-a and cfg-b, and LIST (100)
#      endpoints list-NNN, STABLE (4) endpoints stable-N and one endpoint
#      `upd`, all on cfg-a and InService;
#   2. h2load -D ADMIN_S --warm-up-time WARMUP POSTs to the admin listener
#      (h2c, x-amz-json-1.1): DescribeEndpoint of one endpoint (-c 8 -m 8),
#      ListEndpoints {} (10 per page, the default) and ListEndpoints
#      {"MaxResults": 100} (a full page of 100), both -c 8 -m 1: the gateway
#      answers a List call with ThrottlingException while 8 are waiting for
#      the store (ADM_LISTS_MAX), so 8 in flight is the most a List run can
#      keep without failed calls;
#   3. InvokeEndpoint, ROUNDS (2) rounds of two phases of INVOKE_S (10)
#      seconds each, alternating (so that a change in what else runs on the
#      machine hits both kinds alike), the same load in all:
#      h2load -c 16 -m 16 on the STABLE endpoints (round robin, one CSV row
#      of 2 features per request) and, beside it, h2load -c 2 -m 4 on `upd`;
#      a. no churn: nothing else runs;
#      b. churn: meanwhile `admin-load.py churn` creates 100 endpoints
#         churn-NNN on cfg-a, waits for them InService (polling
#         DescribeEndpoint) and invokes each once, updates each to cfg-b,
#         waits and invokes, deletes each, waits until they are gone and
#         invokes (not 2xx expected), in a loop; and `admin-load.py update`
#         switches `upd` between cfg-a and cfg-b (UpdateEndpoint, wait
#         InService, one invocation that must get the new model's answer) in
#         a loop, while h2load keeps requests in flight on it. When h2load
#         ends, both stop; the churn deletes the endpoints it left, outside
#         the measured time.
# It prints calls/s, p50 and p99 of every admin run; invocations/s, p50, p99
# and failed invocations of every phase, the gateway's and redis-server's CPU
# in each, and over all rounds the ratio churn/no churn; the churn's operations
# per second (an operation: one create, update or delete that reached its
# state) and how long each kind took; the updates of `upd`.
#
# Checks: every h2load request answered 2xx (failed invocations on the
# stable endpoints and on `upd` must be 0); every churn and update operation
# reached its state with the expected answers; the gateway exits 0 on SIGTERM
# and stops its redis-server.
# Exit status: 0 when every check held; 1 on a broken run (a failed check, a
# server that died or did not start); 2 on bad usage. Everything started here
# is stopped on exit.
#
# Environment: QUICK=1 (ADMIN_S 2, INVOKE_S 5, ROUNDS 1: under 30 s),
# ADMIN_S (5), INVOKE_S (10), ROUNDS (2), WARMUP (1), ADMIN_CLIENTS (8) and
# ADMIN_STREAMS (8) (the Describe run), LIST_CLIENTS (8) (the List runs, one
# stream each), CLIENTS (16), STREAMS (16), UPD_CLIENTS (2), UPD_STREAMS (4),
# STABLE (4), LIST (100), CHURN (100); KEEP=1 keeps the temporary directory
# (config, logs, h2load logs, the churn's JSON). Run about 70 s (2 CPUs).
set -euo pipefail

usage() {
    echo "usage: $0   (env QUICK, ADMIN_S, INVOKE_S, ROUNDS, WARMUP, ADMIN_CLIENTS," >&2
    echo "       ADMIN_STREAMS, LIST_CLIENTS, CLIENTS, STREAMS, UPD_CLIENTS, UPD_STREAMS," >&2
    echo "       STABLE, LIST, CHURN, KEEP: decimal integers)" >&2
    exit 2
}
[ $# -eq 0 ] || usage

if [ "${QUICK:-0}" = 1 ]; then
    ADMIN_S=${ADMIN_S:-2}
    INVOKE_S=${INVOKE_S:-5}
    ROUNDS=${ROUNDS:-1}
fi
ADMIN_S=${ADMIN_S:-5}
INVOKE_S=${INVOKE_S:-10}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-1}
ADMIN_CLIENTS=${ADMIN_CLIENTS:-8}
ADMIN_STREAMS=${ADMIN_STREAMS:-8}
LIST_CLIENTS=${LIST_CLIENTS:-8}
CLIENTS=${CLIENTS:-16}
STREAMS=${STREAMS:-16}
UPD_CLIENTS=${UPD_CLIENTS:-2}
UPD_STREAMS=${UPD_STREAMS:-4}
STABLE=${STABLE:-4}
LIST=${LIST:-100}
CHURN=${CHURN:-100}
PY=/usr/bin/python3
for v in "$ADMIN_S" "$INVOKE_S" "$ROUNDS" "$WARMUP" "$ADMIN_CLIENTS" "$ADMIN_STREAMS" "$LIST_CLIENTS" \
         "$CLIENTS" "$STREAMS" \
         "$UPD_CLIENTS" "$UPD_STREAMS" "$STABLE" "$LIST" "$CHURN"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done
[ "$LIST" -le 999 ] && [ "$CHURN" -le 999 ] || usage
# The store holds at most 1000 endpoints (ADM_MAX_RESOURCES): more is
# ResourceLimitExceeded.
if [ $(( LIST + STABLE + 1 + CHURN )) -gt 1000 ]; then
    echo "bench-admin: LIST + STABLE + 1 + CHURN endpoints must be at most 1000 (the store's limit)" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL_A=$ROOT/tests/data/kmeans-2d.json

for tool in h2load curl redis-server "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-admin: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ -f "$MODEL_A" ] || { echo "bench-admin: $MODEL_A missing" >&2; exit 1; }
if [ ! -x bin/infergate ]; then
    echo "bench-admin: bin/infergate missing, running make" >&2
    make --no-print-directory all >&2
fi

TMP=$(mktemp -d /tmp/ig-bench-admin.XXXXXX)
GW_PID='' REDIS_PID='' BG_PIDS=''
cleanup() {
    local rc=$?
    for pid in $BG_PIDS; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$GW_PID" 2>/dev/null || true
    fi
    # The gateway stops its redis-server; if the gateway had to be killed,
    # stop it here (by the pid it wrote).
    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-admin: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-admin: BROKEN RUN: $*" >&2; exit 1; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of a process, all threads, in microseconds (0 if gone).
cpu_us() {
    local ticks
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0)
    echo $(( ticks * 1000000 / $(getconf CLK_TCK) ))
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
GW_PORT=$(free_port)
ADMIN_PORT=$(free_port)
while [ "$ADMIN_PORT" = "$GW_PORT" ]; do ADMIN_PORT=$(free_port); done

# Model B: kmeans-2d's shape, another first centroid, so that the row
# 1,2.5 gets "0.0,0.0" from it and "2.0,1.118033988749895" from model A.
printf '{"algorithm": "kmeans", "feature_dim": 2, "centroids": [[1, 2.5], [5, 5]]}\n' > "$TMP/kmeans-2d-b.json"
printf '1,2.5\n' > "$TMP/row.csv"
printf '{"EndpointName":"list-000"}' > "$TMP/describe.json"
printf '{}' > "$TMP/list10.json"
printf '{"MaxResults":100}' > "$TMP/list100.json"

cat > "$TMP/infergate.conf" <<EOF
listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
admin_auth = off
log_level = warn
data_dir = $TMP/var
EOF

# ---- gateway and setup -----------------------------------------------------

T_START=$(date +%s)
bin/infergate --config "$TMP/infergate.conf" > "$TMP/infergate.log" 2>&1 &
GW_PID=$!
for _ in $(seq 150); do
    kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at start-up: $(cat "$TMP/infergate.log")"
    curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/ping" \
        && curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/ping" || die "gateway did not answer GET /ping within 15 s"
REDIS_PID=$(cat "$TMP/var/redis.pid" 2>/dev/null || true)
[ -n "$REDIS_PID" ] || die "no $TMP/var/redis.pid: did the gateway start its redis-server?"

SETUP=$("$PY" load/admin-load.py setup "$ADMIN_PORT" "$GW_PORT" "$MODEL_A" "$TMP/kmeans-2d-b.json" \
    "$LIST" "$STABLE" 2> "$TMP/setup.err") || die "setup: $(cat "$TMP/setup.err")"

BROKEN=''
# Counts the requests of an h2load run that did not get a 2xx: h2load's
# failed count plus its 3xx, 4xx and 5xx, and the lines of its per-request log
# with a status that is neither 2xx nor 0. A status of 0 with the request
# counted "succeeded" is h2load's warm-up boundary: a response whose headers
# came during the warm-up and whose stream closed after it is logged without
# its status (h2load.cc, Client::on_status_code; its "status codes:" line may
# or may not count it); at most the requests in flight (CLIENTS x STREAMS of
# the run, $2) can be such, and more count as bad.
# Appends "$label $bad" to $TMP/bad and records a broken check.
check_h2load() {
    local label=$1 inflight=$2 out=$TMP/$1.out line total failed s2 s3 s4 s5 logbad nostatus bad missing
    line=$(grep -E '^requests: ' "$out") || die "$label: no 'requests:' line in h2load output: $(tail -5 "$out")"
    total=$(sed -E 's/^requests: ([0-9]+) total.*/\1/' <<<"$line")
    failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    line=$(grep -E '^status codes: ' "$out") || die "$label: no 'status codes:' line in h2load output"
    read -r s2 s3 s4 s5 < <(sed -E 's/^status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx.*/\1 \2 \3 \4/' <<<"$line")
    logbad=$(awk -F'\t' '$2 !~ /^(2[0-9][0-9]|0)$/ { bad++ } END { print bad + 0 }' "$TMP/$label.log")
    nostatus=$(awk -F'\t' '$2 == "0" { n++ } END { print n + 0 }' "$TMP/$label.log")
    bad=$(( failed + s3 + s4 + s5 ))
    [ "$logbad" -le "$bad" ] || bad=$logbad
    [ "$nostatus" -le "$inflight" ] || bad=$(( bad + nostatus ))
    # Requests counted in no status class: only those logged without a status.
    missing=$(( total - s2 - s3 - s4 - s5 ))
    [ "$missing" -le "$nostatus" ] || bad=$(( bad + missing - nostatus ))
    echo "$label $bad $nostatus" >> "$TMP/bad"
    [ "$total" -gt 0 ] || BROKEN="$BROKEN
  $label: h2load completed no request"
    [ "$bad" -eq 0 ] || BROKEN="$BROKEN
  $label: $bad requests without a 2xx: $(grep -E '^(requests|status codes): ' "$out" | tr '\n' ' ')"
}

# h2load_bg LABEL SECONDS CLIENTS STREAMS BODY CONTENT_TYPE [-H ...] URL...
# Starts h2load in the background; $H2_PID is its pid.
h2load_bg() {
    local label=$1 secs=$2 c=$3 m=$4 body=$5 ctype=$6
    shift 6
    h2load -D "$secs" --warm-up-time "$WARMUP" -c "$c" -m "$m" -d "$body" \
        -H "content-type: $ctype" --log-file="$TMP/$label.log" "$@" > "$TMP/$label.out" 2>&1 &
    H2_PID=$!
}

# phase_cpu LABEL start|end: the gateway's and redis-server's CPU and the time.
phase_cpu() {
    echo "$(cpu_us "$GW_PID") $(cpu_us "$REDIS_PID") $(date +%s%N)" > "$TMP/$1.cpu$2"
}

# ---- admin calls per second ------------------------------------------------

ADMIN_URL="http://127.0.0.1:$ADMIN_PORT/"
for run in describe:DescribeEndpoint list10:ListEndpoints list100:ListEndpoints; do
    label=${run%%:*} op=${run#*:}
    # The answer first, checked: one call with curl.
    code=$(curl -s -o "$TMP/$label.answer" -w '%{http_code}' -H 'content-type: application/x-amz-json-1.1' \
        -H "x-amz-target: SageMaker.$op" --data-binary @"$TMP/$label.json" "$ADMIN_URL")
    [ "$code" = 200 ] || die "$op $(cat "$TMP/$label.json") answered $code: $(head -c 300 "$TMP/$label.answer")"
    c=$ADMIN_CLIENTS m=$ADMIN_STREAMS
    [ "$label" = describe ] || c=$LIST_CLIENTS m=1
    phase_cpu "$label" start
    h2load_bg "$label" "$ADMIN_S" "$c" "$m" "$TMP/$label.json" \
        application/x-amz-json-1.1 -H "x-amz-target: SageMaker.$op" "$ADMIN_URL"
    wait "$H2_PID" || die "h2load $label exited $?: $(tail -20 "$TMP/$label.out")"
    phase_cpu "$label" end
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway died during $label: $(tail -20 "$TMP/infergate.log")"
    check_h2load "$label" $(( c * m ))
done
msg=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
n, want = len(d["Endpoints"]), min(100, int(sys.argv[2]))
if n != want or ("NextToken" in d) != (int(sys.argv[2]) > 100):
    sys.exit("%d endpoints, NextToken %s; wanted %d" % (n, "NextToken" in d, want))
' "$TMP/list100.answer" "$(( LIST + STABLE + 1 ))" 2>&1) || BROKEN="$BROKEN
  ListEndpoints {\"MaxResults\":100}: $msg"

# ---- InvokeEndpoint: no churn, then churn ----------------------------------

STABLE_URLS=()
for i in $(seq 0 $(( STABLE - 1 ))); do
    STABLE_URLS+=("http://127.0.0.1:$GW_PORT/endpoints/stable-$i/invocations")
done
UPD_URL="http://127.0.0.1:$GW_PORT/endpoints/upd/invocations"

PHASES=''
for round in $(seq "$ROUNDS"); do PHASES="$PHASES nochurn-$round churn-$round"; done
for phase in $PHASES; do
    rm -f "$TMP/stop"
    BG_PIDS=''
    if [ "${phase%-*}" = churn ]; then
        "$PY" load/admin-load.py churn "$ADMIN_PORT" "$GW_PORT" "$CHURN" "$TMP/stop" "$TMP/$phase.json" \
            2> "$TMP/$phase.err" &
        CHURN_PID=$!
        "$PY" load/admin-load.py update "$ADMIN_PORT" "$GW_PORT" upd "$TMP/stop" "$TMP/update-${phase#*-}.json" \
            2> "$TMP/update-${phase#*-}.err" &
        UPDATE_PID=$!
        BG_PIDS="$CHURN_PID $UPDATE_PID"
    fi
    phase_cpu "$phase" start
    h2load_bg "$phase-stable" "$INVOKE_S" "$CLIENTS" "$STREAMS" "$TMP/row.csv" text/csv \
        -H 'accept: text/csv' "${STABLE_URLS[@]}"
    STABLE_PID=$H2_PID
    BG_PIDS="$BG_PIDS $STABLE_PID"
    h2load_bg "$phase-upd" "$INVOKE_S" "$UPD_CLIENTS" "$UPD_STREAMS" "$TMP/row.csv" text/csv \
        -H 'accept: text/csv' "$UPD_URL"
    UPD_PID=$H2_PID
    BG_PIDS="$BG_PIDS $UPD_PID"
    wait "$STABLE_PID" || die "h2load $phase-stable exited $?: $(tail -20 "$TMP/$phase-stable.out")"
    wait "$UPD_PID" || die "h2load $phase-upd exited $?: $(tail -20 "$TMP/$phase-upd.out")"
    touch "$TMP/stop"
    phase_cpu "$phase" end
    if [ "${phase%-*}" = churn ]; then
        wait "$CHURN_PID" || die "admin-load.py churn exited $?: $(tail -20 "$TMP/$phase.err")"
        wait "$UPDATE_PID" || die "admin-load.py update exited $?: $(tail -20 "$TMP/update-${phase#*-}.err")"
    fi
    BG_PIDS=''
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway died during $phase: $(tail -20 "$TMP/infergate.log")"
    check_h2load "$phase-stable" $(( CLIENTS * STREAMS ))
    check_h2load "$phase-upd" $(( UPD_CLIENTS * UPD_STREAMS ))
done

# ---- the gateway stops, and stops its redis-server -------------------------

kill -TERM "$GW_PID"
gw_rc=0
wait "$GW_PID" || gw_rc=$?
GW_PID=
[ "$gw_rc" -eq 0 ] || BROKEN="$BROKEN
  the gateway exited $gw_rc on SIGTERM: $(tail -5 "$TMP/infergate.log")"
for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$REDIS_PID" 2>/dev/null || BROKEN="$BROKEN
  redis-server (pid $REDIS_PID) still running 5 s after the gateway exited"
T_TOTAL=$(( $(date +%s) - T_START ))

# ---- report ----------------------------------------------------------------

echo "bench-admin: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr)"
echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include 2>/dev/null)" ] || echo ' + uncommitted src/include changes'), $(h2load --version | head -1), $(redis-server --version | sed -E 's/^Redis server v=([^ ]+).*/redis-server \1/'), load average before: $LOADAVG"
echo "  gateway: admin_listen (h2c and HTTP/1.1), admin_auth off, embedded redis-server in data_dir; built-in kmeans (2 features)"
echo "  setup: $SETUP ($LIST list-NNN, $STABLE stable-N, upd)"
echo "  run: $T_TOTAL s in all$([ "${QUICK:-0}" != 1 ] || echo ' (QUICK=1)')"
echo

"$PY" - "$TMP" "$ROUNDS" "$ADMIN_S" "$INVOKE_S" "$WARMUP" "$ADMIN_CLIENTS" "$ADMIN_STREAMS" "$LIST_CLIENTS" \
    "$CLIENTS" "$STREAMS" \
    "$UPD_CLIENTS" "$UPD_STREAMS" "$STABLE" "$CHURN" <<'EOF'
import json
import math
import re
import sys

(tmp, rounds, admin_s, invoke_s, warmup, ac, am, lc, c, m, uc, um, stable, churn) = sys.argv[1:]
bad, nostatus = {}, 0
for line in open(tmp + "/bad"):
    label, nbad, nos = line.split()
    bad[label] = nbad
    nostatus += int(nos)


def h2(label):
    out = open("%s/%s.out" % (tmp, label)).read()
    mo = re.search(r"^finished in [^,]+, ([0-9.]+) req/s", out, re.M)
    rps = float(mo.group(1)) if mo else float("nan")
    lat = sorted(int(line.split("\t")[2]) for line in open("%s/%s.log" % (tmp, label)))
    n = len(lat)

    def pct(p):  # nearest rank, ms
        return lat[max(0, math.ceil(p / 100.0 * n) - 1)] / 1000.0 if n else float("nan")

    return {"rps": rps, "n": n, "p50": pct(50), "p99": pct(99), "max": pct(100),
            "bad": int(bad.get(label, -1))}


def cpu(label):
    g0, r0, t0 = (int(v) for v in open("%s/%s.cpustart" % (tmp, label)).read().split())
    g1, r1, t1 = (int(v) for v in open("%s/%s.cpuend" % (tmp, label)).read().split())
    wall = (t1 - t0) / 1000.0
    return (g1 - g0) / wall, (r1 - r0) / wall


print("admin API: h2load -D %s --warm-up-time %s, POST / (h2c) x-amz-json-1.1; Describe -c %s -m %s,"
      " List -c %s -m 1" % (admin_s, warmup, ac, am, lc))
print("%-30s %8s %8s %7s %7s %7s %6s %6s %7s %8s %6s" % ("call", "calls/s", "calls", "p50 ms",
                                                          "p99 ms", "max ms", "gw CPU", "redis",
                                                          "gw us", "redis us", "failed"))
for label, name in (("describe", "DescribeEndpoint"), ("list10", "ListEndpoints (10 per page)"),
                    ("list100", "ListEndpoints MaxResults 100")):
    s = h2(label)
    g, r = cpu(label)
    print("%-30s %8.0f %8d %7.2f %7.2f %7.2f %6.2f %6.2f %7.1f %8.1f %6d"
          % (name, s["rps"], s["n"], s["p50"], s["p99"], s["max"], g, r, g * 1e6 / s["rps"],
             r * 1e6 / s["rps"], s["bad"]))
print()
print("InvokeEndpoint: %s round(s) of (no churn, churn), each phase h2load -D %s --warm-up-time %s,"
      " one row of 2 features (text/csv);" % (rounds, invoke_s, warmup))
print("  stable: -c %s -m %s over %s endpoints stable-N (round robin); upd: -c %s -m %s on `upd`"
      % (c, m, stable, uc, um))
print("%-11s %10s %9s %7s %7s %7s %7s %10s %7s %6s %6s"
      % ("phase", "stable/s", "requests", "p50 ms", "p99 ms", "max ms", "failed", "upd inv/s",
         "failed", "gw CPU", "redis"))
tot = {"nochurn": [0, 0.0, 0, 0.0], "churn": [0, 0.0, 0, 0.0]}  # requests, s; upd
for r in range(1, int(rounds) + 1):
    for kind in ("nochurn", "churn"):
        phase = "%s-%d" % (kind, r)
        s, u = h2(phase + "-stable"), h2(phase + "-upd")
        g, rc = cpu(phase)
        t = tot[kind]
        t[0] += s["rps"] * float(invoke_s)
        t[1] += float(invoke_s)
        t[2] += u["rps"] * float(invoke_s)
        t[3] += float(invoke_s)
        print("%-11s %10.0f %9d %7.2f %7.2f %7.2f %7d %10.0f %7d %6.2f %6.2f"
              % (("no churn" if kind == "nochurn" else "churn") + " %d" % r, s["rps"], s["n"],
                 s["p50"], s["p99"], s["max"], s["bad"], u["rps"], u["bad"], g, rc))
nc, ch_ = tot["nochurn"], tot["churn"]
print("stable invocations/s, all rounds: no churn %.0f, churn %.0f, ratio churn / no churn %.3f"
      % (nc[0] / nc[1], ch_[0] / ch_[1], (ch_[0] / ch_[1]) / (nc[0] / nc[1])))
print("`upd` invocations/s, all rounds: no churn %.0f, churn %.0f (ratio %.3f)"
      % (nc[2] / nc[3], ch_[2] / ch_[3], (ch_[2] / ch_[3]) / (nc[2] / nc[3])))
print()
churns = [json.load(open("%s/churn-%d.json" % (tmp, r))) for r in range(1, int(rounds) + 1)]
updates = [json.load(open("%s/update-%d.json" % (tmp, r))) for r in range(1, int(rounds) + 1)]
print("the two admin clients (Python, on the same CPUs) used %.2f CPUs during the churn phases"
      % (sum(d["cpu_s"] for d in churns + updates) / sum(d["seconds"] for d in churns)))


def merged(ds, key):
    out = []
    for d in ds:
        out += d["raw"][key] if key else d["raw"]
    return out


def lat(xs):
    if not xs:
        return "none"
    xs = sorted(xs)
    return "p50 %.1f ms, max %.1f ms" % (xs[(len(xs) - 1) // 2] * 1e3, xs[-1] * 1e3)


secs = sum(d["seconds"] for d in churns)
ops = sum(d["ops"] for d in churns)
calls = sum(d["admin_calls"] for d in churns)
print("churn (%s endpoints churn-NNN, each: create, update to cfg-b, delete; waits by polling"
      " DescribeEndpoint), all rounds:" % churn)
print("  %d operations in %.1f s: %.1f operations/s (%d creates, %d updates, %d deletes;"
      " %d full rounds of %s)" % (ops, secs, ops / secs, sum(d["creates"] for d in churns),
                                 sum(d["updates"] for d in churns),
                                 sum(d["deletes"] for d in churns),
                                 sum(d["rounds"] for d in churns), churn))
print("  admin calls %d (%.0f/s, polling included); create->InService %s;"
      % (calls, calls / secs, lat(merged(churns, "create"))))
print("  update->InService %s; delete->gone %s; errors %d"
      % (lat(merged(churns, "update")), lat(merged(churns, "delete")),
         sum(d["errors"] for d in churns)))
usecs = sum(d["seconds"] for d in updates)
nup = sum(d["updates"] for d in updates)
print("updates of `upd` (cfg-a <-> cfg-b, each checked by an invocation): %d in %.1f s (%.1f/s),"
      " update->InService %s; errors %d" % (nup, usecs, nup / usecs, lat(merged(updates, None)),
                                           sum(d["errors"] for d in updates)))
for name, ds in (("churn", churns), ("update", updates)):
    for r, d in enumerate(ds, 1):
        for e in d["error_list"]:
            print("  %s %d error: %s" % (name, r, e))
        if d["reconnects"]:
            print("  %s %d: the admin listener closed the keep-alive connection %d times"
                  % (name, r, d["reconnects"]))
print()
print("calls/s, inv/s: h2load's figure over the measured seconds (warm-up excluded); p50/p99/max:\n"
      "nearest rank over h2load's per-request log; failed: requests without a 2xx; gw CPU, redis:\n"
      "CPUs used by the gateway and by its redis-server over the run (warm-up included); gw us,\n"
      "redis us: their CPU microseconds per call (CPUs / calls/s).")
if nostatus:
    print("%d request(s) at h2load's warm-up boundary logged without a status (answered during the\n"
          "warm-up, closed after it: h2load counts them succeeded with status 0), not counted failed."
          % nostatus)
EOF

for f in "$TMP"/churn-*.json "$TMP"/update-*.json; do
    "$PY" -c 'import json, sys; sys.exit(1 if json.load(open(sys.argv[1]))["errors"] else 0)' \
        "$f" || BROKEN="$BROKEN
  $(basename "$f" .json): errors (listed above)"
done
if [ -n "$BROKEN" ]; then
    echo "bench-admin: BROKEN RUN:$BROKEN" >&2
    exit 1
fi
echo "bench-admin: every check held"
