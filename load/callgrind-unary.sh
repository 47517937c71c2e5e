#!/usr/bin/env bash
# load/callgrind-unary.sh - CPU instructions per unary InvokeEndpoint request,
# counted by valgrind's callgrind (deterministic, unlike seconds).
#
# Runs bin/infergate twice under `valgrind --tool=callgrind`, each time as a
# whole process (start-up, one GET /ping, one probe request, N requests,
# SIGTERM drain, exit), with workers = 1 and max_delay_us = 0, and drives it
# with
#   h2load -n N -c 1 -m 1 -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv'
# (one request at a time, so every request is a batch of one row). The first
# run serves N1 requests, the second N2; everything but the requests is the
# same in both, so
#   instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1)
# Ir counts every thread of the process (the event loop and the worker) and
# the libraries (libevent, nghttp2, jemalloc, libc, libcrypto); it does not
# count the kernel (system calls).
#
# It prints the top functions by self Ir of the N2 run
# (callgrind_annotate --inclusive=no), the top functions by marginal self Ir
# per request (per-function N2 - N1), the marginal Ir per request of each
# object file, and the gateway's own functions by marginal inclusive Ir per
# request. For scale, it then measures nghttpd (--no-tls, a static file of
# the gateway's response, the same h2load POSTs) the same way.
#
# Usage: load/callgrind-unary.sh    (env N1 default 2000, N2 default 12000,
#                                     TOP default 15, KEEP=1 keeps the files)
# INFERGATE_BIN (default bin/infergate) measures another build of the gateway
# (e.g. a copy of the binary before a change, so that rebuilding during a run
# does not disturb it); its path should end in bin/infergate for the table of
# the gateway's own functions.
# CG_CLIENTS and CG_STREAMS (default 1 and 1) set h2load's -c and -m, and
# CG_DELAY_US (default 0) the endpoint's max_delay_us: e.g.
# CG_CLIENTS=32 CG_STREAMS=32 CG_DELAY_US=2000 counts a request's share
# under concurrency, rows batched together as bench-unary.sh sends them.
# CG_H1=1 sends the requests over HTTP/1.1 (h2load --h1; -m above 1 then
# pipelines), as boto3 and most AWS SDKs do; nghttpd (HTTP/2 only) is then
# not measured.
# Exit status: 0 on a complete measurement; 1 on a broken run (non-2xx, a
# server that died or did not start, a gateway that did not exit 0 on
# SIGTERM); 2 on bad usage.
set -euo pipefail

N1=${N1:-2000}
N2=${N2:-12000}
TOP=${TOP:-15}
CG_CLIENTS=${CG_CLIENTS:-1}
CG_STREAMS=${CG_STREAMS:-1}
CG_DELAY_US=${CG_DELAY_US:-0}
CG_H1=${CG_H1:-0}
[[ "$CG_H1" =~ ^[01]$ ]] || { echo "usage: CG_H1 is 0 or 1" >&2; exit 2; }
H2LOAD_PROTO=()
[ "$CG_H1" = 0 ] || H2LOAD_PROTO=(--h1)
[[ "$CG_DELAY_US" =~ ^[0-9]+$ ]] || { echo "usage: CG_DELAY_US is a decimal integer" >&2; exit 2; }
for v in "$N1" "$N2" "$TOP" "$CG_CLIENTS" "$CG_STREAMS"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "usage: [N1=A N2=B TOP=T] $0 (positive integers, A < B)" >&2; exit 2; }
done
[ "$N1" -lt "$N2" ] || { echo "callgrind-unary: N1 must be below N2" >&2; exit 2; }
PY=/usr/bin/python3

cd "$(dirname "$0")/.."
ROOT=$PWD
MODEL=$ROOT/load/models/bench-kmeans-10.json

for tool in valgrind callgrind_annotate h2load nghttpd curl "$PY"; do
    command -v "$tool" >/dev/null || { echo "callgrind-unary: $tool not found (make deps installs it)" >&2; exit 1; }
done
[ -f "$MODEL" ] || { echo "callgrind-unary: $MODEL missing (load/models/gen_bench_model.py writes it)" >&2; exit 1; }
IG_BIN=${INFERGATE_BIN:-$ROOT/bin/infergate}
if [ ! -x "$IG_BIN" ]; then
    [ -z "${INFERGATE_BIN:-}" ] || { echo "callgrind-unary: $IG_BIN is not executable" >&2; exit 1; }
    echo "callgrind-unary: bin/infergate missing, running make" >&2
    make --no-print-directory all >&2
fi

TMP=$(mktemp -d /tmp/ig-callgrind-unary.XXXXXX)
SRV_PID=
cleanup() {
    local rc=$?
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SRV_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "callgrind-unary: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "callgrind-unary: BROKEN RUN: $*" >&2; exit 1; }

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '1.5,-2.25,3,0.125,-4,5.5,-6,7.75,-8,9\n' > "$TMP/row.csv"
cat > "$TMP/infergate.conf" <<EOF
listen = 127.0.0.1:$PORT
log_level = warn
workers = 1

[endpoint bench]
model = file://$MODEL
max_batch_rows = 256
max_delay_us = $CG_DELAY_US
max_inflight = 8
EOF
GW_URL="http://127.0.0.1:$PORT/endpoints/bench/invocations"
NG_URL="http://127.0.0.1:$PORT/prediction.csv"
mkdir "$TMP/htdocs"

# One measured process: $1 = gateway|nghttpd, $2 = number of requests.
# Leaves $TMP/callgrind.$1.$2.out, $TMP/h2load.$1.$2.out, $TMP/$1.$2.log.
measure() {
    local what=$1 n=$2 rc=0 line total ok s2 url code
    local tag=$what.$n
    if [ "$what" = gateway ]; then
        valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.$tag.out" \
            "$IG_BIN" --config "$TMP/infergate.conf" > "$TMP/$tag.log" 2>&1 &
        url=$GW_URL
    else
        valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.$tag.out" \
            nghttpd --no-tls -d "$TMP/htdocs" "$PORT" > "$TMP/$tag.log" 2>&1 &
        url=$NG_URL
    fi
    SRV_PID=$!
    # Exactly one successful readiness request per run (a refused connection
    # costs the server nothing), then one probe request: the same in both runs.
    for _ in $(seq 600); do
        kill -0 "$SRV_PID" 2>/dev/null || die "$what exited at start-up: $(tail -20 "$TMP/$tag.log")"
        if [ "$what" = gateway ]; then
            curl -sf -o /dev/null "http://127.0.0.1:$PORT/ping" && break
        else
            curl -sf --http2-prior-knowledge -o /dev/null "$url" && break
        fi
        sleep 0.1
    done
    code=$(curl -s --http2-prior-knowledge -o "$TMP/probe.$tag" -w '%{http_code}' \
        -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "$url" || true)
    [ "$code" = 200 ] || die "$what: probe POST answered '$code': $(head -c 300 "$TMP/probe.$tag" 2>/dev/null)"
    h2load "${H2LOAD_PROTO[@]}" -n "$n" -c "$CG_CLIENTS" -m "$CG_STREAMS" -d "$TMP/row.csv" -H 'content-type: text/csv' -H 'accept: text/csv' \
        "$url" > "$TMP/h2load.$tag.out" 2>&1 || die "h2load exited $?: $(tail -20 "$TMP/h2load.$tag.out")"
    kill -0 "$SRV_PID" 2>/dev/null || die "$what died during the run: $(tail -20 "$TMP/$tag.log")"
    line=$(grep -E '^requests: ' "$TMP/h2load.$tag.out") || die "no 'requests:' line from h2load"
    total=$(sed -E 's/^requests: ([0-9]+) total.*/\1/' <<<"$line")
    ok=$(sed -E 's/.* ([0-9]+) succeeded.*/\1/' <<<"$line")
    s2=$(grep -E '^status codes: ' "$TMP/h2load.$tag.out" | sed -E 's/^status codes: ([0-9]+) 2xx.*/\1/')
    if [ "$total" != "$n" ] || [ "$ok" != "$n" ] || [ "$s2" != "$n" ]; then
        die "$what: not every response was 2xx: $(grep -E '^(requests|status codes): ' "$TMP/h2load.$tag.out")"
    fi
    kill -TERM "$SRV_PID"
    wait "$SRV_PID" || rc=$?
    SRV_PID=
    # nghttpd has no SIGTERM handler: it dies of the signal (valgrind still
    # writes the profile); the gateway must drain and exit 0.
    [ "$what" != gateway ] || [ "$rc" -eq 0 ] || die "gateway exited $rc on SIGTERM: $(tail -20 "$TMP/$tag.log")"
    [ -s "$TMP/callgrind.$tag.out" ] || die "callgrind wrote no profile for $what"
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$TMP/callgrind.$tag.out" > "$TMP/self.$tag.txt"
    callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$TMP/callgrind.$tag.out" > "$TMP/inclusive.$tag.txt"
}

t0=$(date +%s)
measure gateway "$N1"
measure gateway "$N2"
cmp -s "$TMP/probe.gateway.$N1" "$TMP/probe.gateway.$N2" || die "the gateway answered the probe differently in the two runs"
cp "$TMP/probe.gateway.$N2" "$TMP/htdocs/prediction.csv"
if [ "$CG_H1" = 0 ]; then
    measure nghttpd "$N1"
    measure nghttpd "$N2"
    cmp -s "$TMP/probe.nghttpd.$N2" "$TMP/htdocs/prediction.csv" || die "nghttpd did not answer POST with the file"
fi
t1=$(date +%s)

echo "callgrind-unary: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(valgrind --version), $(h2load --version | head -1)"
echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include 2>/dev/null)" ] || echo ' + uncommitted src/include changes'), $IG_BIN built $(date -u -r "$IG_BIN" '+%Y-%m-%d %H:%M UTC')"
echo "  gateway: workers 1, endpoint bench (embedded K-Means k=10 D=10), max_delay_us $CG_DELAY_US, $([ "$CG_H1" = 0 ] && echo 'HTTP/2 cleartext' || echo 'HTTP/1.1')"
echo "  load: h2load ${H2LOAD_PROTO[*]}${H2LOAD_PROTO[*]:+ }-n N -c $CG_CLIENTS -m $CG_STREAMS -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' ($([ "$CG_CLIENTS$CG_STREAMS" = 11 ] && echo 'one request at a time' || echo "$((CG_CLIENTS * CG_STREAMS)) requests at a time"))"
echo "  row: $(tr -d '\n' < "$TMP/row.csv")  ->  $(tr -d '\n' < "$TMP/htdocs/prediction.csv")"
echo "  wall time of the $([ "$CG_H1" = 0 ] && echo four || echo two) runs: $((t1 - t0)) s"
echo

"$PY" - "$TMP" "$N1" "$N2" "$TOP" "$CG_H1" <<'EOF'
import re
import sys

tmp, n1, n2, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
LINE = re.compile(r"^\s*([0-9,]+)\s+\(\s*([0-9.]+)%\)\s+(.*)$")


def total_ir(what, n):
    """The "summary:" line of a callgrind.out file, else its "totals:" line."""
    found = {}
    with open("%s/callgrind.%s.%d.out" % (tmp, what, n)) as f:
        for line in f:
            for key in ("summary:", "totals:"):
                if line.startswith(key) and key not in found:
                    found[key] = int(line.split()[1])
    if not found:
        sys.exit("callgrind-unary: BROKEN RUN: no summary/totals line for %s %d" % (what, n))
    return found.get("summary:", found.get("totals:"))


def functions(kind, what, n):
    """[(Ir, percent, 'file:function [object]')] in callgrind_annotate's order."""
    rows, body = [], False
    with open("%s/%s.%s.%d.txt" % (tmp, kind, what, n)) as f:
        for line in f:
            if "file:function" in line:
                body = True
                continue
            m = LINE.match(line) if body else None
            if m:
                rows.append((int(m.group(1).replace(",", "")), float(m.group(2)), m.group(3).strip()))
    return rows


def marginal(kind, what):
    """{function: (Ir_f(N2) - Ir_f(N1)) / (N2 - N1)}."""
    d = {}
    for sign, n in ((-1, n1), (1, n2)):
        for ir, _, name in functions(kind, what, n):
            d[name] = d.get(name, 0) + sign * ir
    return {name: v / (n2 - n1) for name, v in d.items()}


def per_request(what, label):
    ir1, ir2 = total_ir(what, n1), total_ir(what, n2)
    per_req = (ir2 - ir1) / (n2 - n1)
    print("%s: Ir, whole process, %6d requests: %15s" % (label, n1, format(ir1, ",")))
    print("%s: Ir, whole process, %6d requests: %15s" % (label, n2, format(ir2, ",")))
    print("%s: marginal instructions per request = (Ir(%d) - Ir(%d)) / (%d - %d) = %s"
          % (label, n2, n1, n2, n1, format(round(per_req), ",")))
    print("%s: fixed cost (start-up, readiness + probe request, shutdown): %s instructions"
          % (label, format(round(ir1 - per_req * n1), ",")))
    return per_req


def by_object(marg, per_req):
    objs = {}
    for name, d in marg.items():
        m = re.search(r"\[([^\]]+)\]$", name)
        obj = m.group(1).rsplit("/", 1)[-1] if m else "(object not shown by callgrind_annotate)"
        objs[obj] = objs.get(obj, 0) + d
    print("%12s %7s  %s" % ("Ir/request", "%", "object"))
    for obj, d in sorted(objs.items(), key=lambda kv: -kv[1]):
        if abs(d) >= 0.5:
            print("%12s %6.2f%%  %s" % (format(round(d), ","), 100.0 * d / per_req, obj))


gw = per_request("gateway", "infergate")
print()

f2 = functions("self", "gateway", n2)
print("Top %d functions by self Ir, infergate N2 = %d run (callgrind_annotate --inclusive=no):" % (top, n2))
print("%16s %7s  %s" % ("Ir", "%", "file:function [object]"))
for ir, pct, name in f2[:top]:
    print("%16s %6.2f%%  %s" % (format(ir, ","), pct, name))
print()

marg = marginal("self", "gateway")
rows = sorted(((d, name) for name, d in marg.items()), reverse=True)
print("Top %d functions by marginal self Ir per request, infergate ((Ir_f(N2) - Ir_f(N1)) / (N2 - N1)):"
      % top)
print("%12s %7s  %s" % ("Ir/request", "%", "file:function [object]"))
for d, name in rows[:top]:
    print("%12s %6.2f%%  %s" % (format(round(d), ","), 100.0 * d / gw, name))
print()

print("Marginal self Ir per request by object file, infergate:")
by_object(marg, gw)
print()

# Inclusive costs of the gateway's own functions (callees included) say
# which step of a request the library instructions belong to. Callback cycles
# (libevent -> gateway -> nghttp2 -> gateway) can make an inclusive figure
# exceed the per-request total; main and (below main) are left out.
inc = marginal("inclusive", "gateway")
own = sorted(((d, name) for name, d in inc.items()
              if name.endswith("bin/infergate]") and not re.search(r":(main|\(below main\)) \[", name)),
             reverse=True)
print("Top %d infergate functions by marginal inclusive Ir per request (--inclusive=yes):" % (top + 10))
print("%12s %7s  %s" % ("Ir/request", "%", "file:function"))
for d, name in own[:top + 10]:
    print("%12s %6.2f%%  %s" % (format(round(d), ","), 100.0 * d / gw,
                                re.sub(r"^/.*?/src/", "src/", re.sub(r" \[.*\]$", "", name))))
print()

if sys.argv[5] == "1":
    sys.exit(0)  # HTTP/1.1: no nghttpd to compare with
print("For scale: nghttpd --no-tls serving the response as a static file, same h2load POSTs")
ng = per_request("nghttpd", "nghttpd")
print("Marginal self Ir per request by object file, nghttpd:")
by_object(marginal("self", "nghttpd"), ng)
print()
print("instructions per request, infergate / nghttpd: %s / %s = %.2f"
      % (format(round(gw), ","), format(round(ng), ","), gw / ng))
EOF
