#!/usr/bin/env bash
# load/bench-sidecar.sh [SECONDS] - one-row requests through infergate in the
# sidecar pod to the model container beside it, side by side with clients
# calling that container directly, and the same gateway and container
# outside any pod, in one run (issue 15's benchmark).
#
# Needs root, podman and kubectl (make k8s-images installs podman; kubectl
# comes with the machine image). One run does, on loopback only:
#   1. the pod: docker/k8s/test (kubectl kustomize | podman kube play) from
#      localhost/infergate:test and localhost/infergate-model:test, built
#      with `make k8s-images` when missing (BUILD=1: always, so the images
#      hold the tree as it is). Its model container is bin/fake-container on
#      conf/models/demo-kmeans.json (k=10, D=64) with the issue's service
#      model (--latency-us 2000 --per-row-us 5 --max-concurrent 4: 2 ms a
#      call plus 5 us a row, 4 calls in service, the rest wait FIFO); the
#      gateway runs docker/k8s/sidecar/infergate.conf (endpoint `model`,
#      model = http://127.0.0.1:8080). Host ports: 127.0.0.1:18081 (the
#      gateway), 127.0.0.1:18080 (the model).
#   2. outside: bin/fake-container with the same model and flags, and
#      bin/infergate with the same infergate.conf (only listen and the
#      model's port changed) as plain processes on free loopback ports: the
#      core of load/bench-upstream.sh, with the pod's model, row and options
#      so the only difference is the pod.
#   3. four h2load runs, each
#        h2load -D SECONDS --warm-up-time WARMUP -c CLIENTS -m STREAMS \
#               -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' URL
#      with ROW.csv the first row of conf/data/digits.csv: "pod direct"
#      (127.0.0.1:18080/invocations), "pod infergate"
#      (127.0.0.1:18081/endpoints/model/invocations), "out direct", "out
#      infergate". Every answer is first checked byte for byte against the
#      container's own answer for the row.
#
# It prints, for each run: rows/s (h2load's req/s over the measured seconds:
# one row per request), p50, p99 and max (nearest rank over h2load's
# --log-file), the container's rows per call (its GET /stats) and the
# gateway's CPU per row (utime + stime of its process from /proc/PID/stat,
# all threads, over the rows its /metrics counted); then the ratios
# infergate/direct in and outside the pod, and the targets: in-pod ratio
# >= 50, in-pod infergate rows/s within 10 % of the outside figure.
#
# Exit status: 0 when every run completed with every response 2xx (a missed
# target is reported, not an error); 1 on a broken run; 2 on bad usage.
# Everything started here is stopped on exit: the pod is taken down with
# `podman kube down` if this script played it. While make k8s-e2e runs or a
# pod infergate-sidecar exists, the script waits (up to 5 minutes, then
# stops), unless REUSE=1: then the running pod is measured as it is and
# left running.
#
# ROUNDS=N repeats the four runs N times (the pod's and the outside runs
# alternate which goes first) and reports each round and the medians: on a
# shared 2-CPU machine one round moves with whatever else runs.
#
# The gateway's endpoint options are the sidecar's shipped ones unless
# MAX_BATCH_ROWS, MAX_DELAY_US or MAX_INFLIGHT is set: then both gateways
# get them, the pod's through an overlay of docker/k8s/test (in the
# temporary directory) that replaces the ConfigMap's infergate.conf.
# load/bench-upstream.sh's tuning is MAX_DELAY_US=1000 MAX_INFLIGHT=16.
#
# Environment: WARMUP (seconds, default 1), CLIENTS (32), STREAMS (32),
# POD_NETWORK_MTU=N plays the pod on a bridge network of its own with that
# MTU (podman network create --opt mtu=N; removed on exit) instead of
# podman's default kube network (1500; the host's loopback has 65536).
#
# CLIENT_NETNS=pod (the default) runs the pod's two h2load runs inside the
# pod's network namespace (nsenter --net into the gateway container's), as
# clients in the same pod: to 127.0.0.1:8080 (the model) and 127.0.0.1:8081
# (the gateway) over the pod's own loopback, as the outside runs use the
# host's. CLIENT_NETNS=host sends them from the host through the hostPorts
# instead (127.0.0.1:18080 and :18081): each packet then also crosses the
# NAT, the bridge and the veth at the pod network's MTU.
#
# ROUNDS (1), MAX_BATCH_ROWS, MAX_DELAY_US, MAX_INFLIGHT, OUTSIDE_CGROUP=1, POD_NETWORK_MTU,
# BUILD=1, REUSE=1 (not with the endpoint options), KEEP=1 (keep the
# temporary directory).
#
# OUTSIDE_CGROUP=1 puts the outside gateway and container into one cgroup
# of their own (cgroup v1 cpu controller, cpu.shares 1024, removed on exit),
# as podman puts the pod: under CPU contention a cgroup gets one share for
# all its threads, while each thread of a plain process gets one. On a
# machine others keep busy, that alone moves rows/s; with it, the pod's
# network namespace and NAT are the only difference left.
set -euo pipefail

usage() {
    echo "usage: $0 [SECONDS]   (default 10; env WARMUP, CLIENTS, STREAMS: decimal integers;" >&2
    echo "       ROUNDS, MAX_BATCH_ROWS, MAX_DELAY_US, MAX_INFLIGHT, POD_NETWORK_MTU; CLIENT_NETNS=pod|host;" >&2
    echo "       OUTSIDE_CGROUP=1," >&2
    echo "       BUILD=1, REUSE=1, KEEP=1)" >&2
    exit 2
}

DURATION=${1:-10}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-32}
STREAMS=${STREAMS:-32}
ROUNDS=${ROUNDS:-1}
[ $# -le 1 ] || usage
for v in "$DURATION" "$WARMUP" "$CLIENTS" "$STREAMS" "$ROUNDS" "${MAX_BATCH_ROWS:-1}" \
    "${MAX_INFLIGHT:-1}"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done
[[ "${MAX_DELAY_US:-0}" =~ ^[0-9]+$ ]] || usage
[[ "${POD_NETWORK_MTU:-1500}" =~ ^[1-9][0-9]{2,4}$ ]] || usage
CLIENT_NETNS=${CLIENT_NETNS:-pod}
[[ "$CLIENT_NETNS" =~ ^(pod|host)$ ]] || usage

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3
POD=infergate-sidecar
GW_C=$POD-infergate
MODEL_C=$POD-model
POD_GW_PORT=18081
POD_MODEL_PORT=18080
EP=model
OVERLAY=docker/k8s/test
SIDECAR_CONF=docker/k8s/sidecar/infergate.conf
MODEL=conf/models/demo-kmeans.json
K8S_CONF=build/k8s/containers.conf

die() { echo "bench-sidecar: BROKEN RUN: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { echo "bench-sidecar: podman runs the pod as root here: run as root" >&2; exit 1; }
for tool in h2load curl kubectl "$PY"; do
    command -v "$tool" >/dev/null || { echo "bench-sidecar: $tool not found" >&2; exit 1; }
done
for f in "$OVERLAY/kustomization.yaml" "$SIDECAR_CONF" "$MODEL" conf/data/digits.csv; do
    [ -f "$f" ] || { echo "bench-sidecar: $f missing" >&2; exit 1; }
done
if [ ! -x bin/infergate ] || [ ! -x bin/fake-container ]; then
    echo "bench-sidecar: bin/infergate or bin/fake-container missing, running make" >&2
    make --no-print-directory all >&2
fi

export CONTAINERS_CONF=$ROOT/$K8S_CONF
images_present() {
    [ -f "$K8S_CONF" ] && command -v podman >/dev/null &&
        podman image exists localhost/infergate:test && podman image exists localhost/infergate-model:test
}
if [ "${BUILD:-0}" = 1 ] || ! images_present; then
    echo "bench-sidecar: make k8s-images" >&2
    make --no-print-directory k8s-images >&2
fi

TMP=$(mktemp -d /tmp/ig-bench-sidecar.XXXXXX)
GW_PID='' FC_PID='' PLAYED=0 OUT_CG='' POD_NET=''
cleanup() {
    local rc=$?
    for pid in $GW_PID $FC_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ -n "$OUT_CG" ]; then
        for _ in $(seq 50); do rmdir "$OUT_CG" 2>/dev/null && break; sleep 0.1; done
        [ ! -d "$OUT_CG" ] || echo "bench-sidecar: could not remove cgroup $OUT_CG" >&2
    fi
    if [ "$PLAYED" = 1 ]; then
        podman kube down - < "$TMP/pod.yaml" > "$TMP/kube-down.log" 2>&1 \
            || { echo "bench-sidecar: podman kube down failed: $(tail -5 "$TMP/kube-down.log")" >&2; rc=1; }
    fi
    [ -z "$POD_NET" ] || podman network rm -f "$POD_NET" > /dev/null 2>&1 \
        || echo "bench-sidecar: podman network rm $POD_NET failed" >&2
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
        echo "bench-sidecar: files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of a process, all threads, in microseconds.
cpu_us() {
    local ticks
    ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat")
    echo $(( ticks * 1000000 / $(getconf CLK_TCK) ))
}

# stime alone, in microseconds.
sys_us() {
    local ticks
    ticks=$(awk '{ sub(/^.*\) /, ""); print $13 }' "/proc/$1/stat")
    echo $(( ticks * 1000000 / $(getconf CLK_TCK) ))
}

# The rows a gateway accepted so far for endpoint model; $1 = its port.
gw_rows() {
    curl -sf "http://127.0.0.1:$1/metrics" \
        | awk -v ep="$EP" '$1 == "infergate_rows_total{endpoint=\"" ep "\"}" { printf "%d\n", $2 }'
}

code_of() { curl -s -o /dev/null -w '%{http_code}' "$1" || true; }

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
head -1 conf/data/digits.csv > "$TMP/row.csv"

# ---- the pod -----------------------------------------------------------------------

# The gateway's configuration, with the endpoint options of the environment.
cp "$SIDECAR_CONF" "$TMP/sidecar.conf"
TUNED=
for kv in "max_batch_rows=${MAX_BATCH_ROWS:-}" "max_delay_us=${MAX_DELAY_US:-}" \
    "max_inflight=${MAX_INFLIGHT:-}"; do
    k=${kv%%=*} v=${kv#*=}
    [ -n "$v" ] || continue
    grep -q "^$k = " "$TMP/sidecar.conf" || die "$SIDECAR_CONF has no '$k = ' line to replace"
    sed -i "s|^$k = .*|$k = $v|" "$TMP/sidecar.conf"
    TUNED="$TUNED $k=$v"
done
SRC=$OVERLAY
if [ -n "$TUNED" ]; then
    [ "${REUSE:-0}" != 1 ] || { echo "bench-sidecar: REUSE=1 measures the pod as it runs: no endpoint options" >&2; exit 2; }
    SRC=$TMP/overlay
    mkdir -p "$SRC"
    cp "$TMP/sidecar.conf" "$SRC/infergate.conf"
    printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' 'resources:' \
        "  - $(realpath --relative-to="$SRC" "$ROOT/$OVERLAY")" 'configMapGenerator:' \
        '  - name: infergate-config' '    behavior: replace' '    files:' '      - infergate.conf' \
        'generatorOptions:' '  disableNameSuffixHash: true' > "$SRC/kustomization.yaml"
fi
kubectl kustomize "$SRC" > "$TMP/pod.yaml" || die "kubectl kustomize $SRC failed"
# make k8s-e2e plays, restarts and takes down the same pod (same name, same
# host ports): a run beside it measures neither. Wait up to 5 minutes for
# one to finish (it waits for us the same way).
for _ in $(seq 150); do
    [ "${REUSE:-0}" = 1 ] && break
    e2e=$(pgrep -f 'tests/k8s/test_k8s_e2e\.py' || true)
    [ -n "$e2e" ] || ! podman pod exists "$POD" || e2e="(no e2e process; the pod exists)"
    [ -n "$e2e" ] || break
    echo "bench-sidecar: waiting for another run holding pod $POD (make k8s-e2e: $(echo $e2e))" >&2
    sleep 2
done
if podman pod exists "$POD"; then
    [ "${REUSE:-0}" = 1 ] || die "pod $POD still held after 5 minutes: take it down" \
        "(kubectl kustomize $OVERLAY | CONTAINERS_CONF=$K8S_CONF podman kube down -) or set REUSE=1"
    echo "bench-sidecar: REUSE=1: measuring the running pod $POD as it is" >&2
else
    PLAYED=1
    NET_ARGS=()
    if [ -n "${POD_NETWORK_MTU:-}" ]; then
        # A bridge network of its own with that MTU (podman's is 1500;
        # loopback's 65536), removed on exit.
        POD_NET=ig-bench-sidecar-$$
        podman network create --opt "mtu=$POD_NETWORK_MTU" "$POD_NET" > "$TMP/network.log" 2>&1 \
            || die "podman network create: $(cat "$TMP/network.log")"
        NET_ARGS=(--network "$POD_NET")
    fi
    podman kube play --replace "${NET_ARGS[@]}" - < "$TMP/pod.yaml" > "$TMP/kube-play.log" 2>&1 \
        || die "podman kube play: $(tail -5 "$TMP/kube-play.log")"
fi
t0=$(date +%s%N)
for _ in $(seq 300); do
    [ "$(code_of "http://127.0.0.1:$POD_GW_PORT/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(code_of "http://127.0.0.1:$POD_GW_PORT/readyz")" = 200 ] \
    || die "the pod's gateway not ready within 30 s: $(curl -s "http://127.0.0.1:$POD_GW_PORT/readyz")"
READY_S=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$(code_of "http://127.0.0.1:$POD_MODEL_PORT/ping")" = 200 ] || die "the pod's model does not answer /ping"
POD_GW_PID=$(podman inspect --format '{{.State.Pid}}' "$GW_C") || die "podman inspect $GW_C"
# The gateway container's cgroup (cpu controller) and the pod's above it.
POD_GW_CG=/sys/fs/cgroup/cpu$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' "/proc/$POD_GW_PID/cgroup")
POD_CG=$(dirname "$POD_GW_CG")
POD_FC_PID=$(podman inspect --format '{{.State.Pid}}' "$MODEL_C") || die "podman inspect $MODEL_C"
[ -r "/proc/$POD_GW_PID/stat" ] || die "no /proc/$POD_GW_PID for $GW_C"
# The model container's service flags, as podman runs them: the outside
# container gets the same.
MODEL_ARGS=$(podman inspect --format '{{join .Config.Cmd " "}}' "$MODEL_C")
[[ "$MODEL_ARGS" == *"--latency-us 2000"*"--per-row-us 5"*"--max-concurrent 4"* ]] \
    || echo "bench-sidecar: note: the pod's model runs '$MODEL_ARGS', not the issue's service model" >&2
read -r -a MODEL_ARGV <<<"$MODEL_ARGS"
image_of() {
    echo "$(podman image inspect --format '{{.Id}}' "$1" | cut -c1-12)," \
        "built $(podman image inspect --format '{{.Created}}' "$1" | cut -c1-19)"
}
IMG_GW=$(image_of localhost/infergate:test)
IMG_FC=$(image_of localhost/infergate-model:test)

# ---- outside: the same container and gateway as plain processes -------------------

if [ "${OUTSIDE_CGROUP:-0}" = 1 ]; then
    [ -d /sys/fs/cgroup/cpu ] || die "OUTSIDE_CGROUP=1 needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu"
    OUT_CG=/sys/fs/cgroup/cpu/ig-bench-sidecar.$$
    mkdir "$OUT_CG" || die "mkdir $OUT_CG"
fi
# $1 = pid: into the outside cgroup, with all its threads.
to_cgroup() { [ -z "$OUT_CG" ] || echo "$1" > "$OUT_CG/cgroup.procs" || die "pid $1 into $OUT_CG"; }

bin/fake-container --model "$MODEL" --port 0 "${MODEL_ARGV[@]}" \
    > "$TMP/fake-container.out" 2> "$TMP/fake-container.log" &
FC_PID=$!
to_cgroup "$FC_PID"
FC_PORT=
for _ in $(seq 100); do
    kill -0 "$FC_PID" 2>/dev/null || die "fake-container exited at start-up: $(cat "$TMP/fake-container.log")"
    FC_PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$TMP/fake-container.out")
    [ -z "$FC_PORT" ] || break
    sleep 0.1
done
[ -n "$FC_PORT" ] || die "fake-container printed no 'listening on' line within 10 s"

OUT_GW_PORT=$(free_port)
sed -e "s|^listen = .*|listen = 127.0.0.1:$OUT_GW_PORT|" \
    -e "s|^model = http://127\.0\.0\.1:8080|model = http://127.0.0.1:$FC_PORT|" \
    "$TMP/sidecar.conf" > "$TMP/infergate.conf"
grep -q "^model = http://127.0.0.1:$FC_PORT\$" "$TMP/infergate.conf" \
    || die "$SIDECAR_CONF has no 'model = http://127.0.0.1:8080' line to point at the outside container"
bin/infergate --config "$TMP/infergate.conf" > "$TMP/infergate.log" 2>&1 &
GW_PID=$!
to_cgroup "$GW_PID"
for _ in $(seq 150); do
    kill -0 "$GW_PID" 2>/dev/null || die "gateway exited at start-up: $(cat "$TMP/infergate.log")"
    [ "$(code_of "http://127.0.0.1:$OUT_GW_PORT/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(code_of "http://127.0.0.1:$OUT_GW_PORT/readyz")" = 200 ] \
    || die "the outside gateway not ready within 15 s: $(curl -s "http://127.0.0.1:$OUT_GW_PORT/readyz")"

# ---- every answer equal to the container's ------------------------------------------

# A run's label is WHERE_WHAT.ROUND; its URL is that of WHERE_WHAT.
# The pod's clients: in its network namespace (CLIENT_NETNS=pod) or on the
# host through the hostPorts.
POD_NS=()
POD_URL_MODEL=$POD_MODEL_PORT POD_URL_GW=$POD_GW_PORT
if [ "$CLIENT_NETNS" = pod ]; then
    command -v nsenter > /dev/null || die "CLIENT_NETNS=pod needs nsenter (util-linux)"
    POD_NS=(nsenter "--net=/proc/$POD_GW_PID/ns/net")
    POD_URL_MODEL=8080 POD_URL_GW=8081
fi
# $1 = label: the command prefix its client runs under.
netns_of() { if [[ "$1" == pod_* ]]; then echo "${POD_NS[@]}"; fi; }
declare -A URL=(
    [pod_direct]="http://127.0.0.1:$POD_URL_MODEL/invocations"
    [pod_infergate]="http://127.0.0.1:$POD_URL_GW/endpoints/$EP/invocations"
    [out_direct]="http://127.0.0.1:$FC_PORT/invocations"
    [out_infergate]="http://127.0.0.1:$OUT_GW_PORT/endpoints/$EP/invocations"
)
LABELS="pod_direct pod_infergate out_direct out_infergate"
for label in $LABELS; do
    # shellcheck disable=SC2046
    code=$($(netns_of "$label") curl -s --http2-prior-knowledge -o "$TMP/$label.answer" -w '%{http_code}' \
        -H 'content-type: text/csv' -H 'accept: text/csv' --data-binary @"$TMP/row.csv" "${URL[$label]}")
    [ "$code" = 200 ] || die "$label answered the probe row $code: $(cat "$TMP/$label.answer")"
    cmp -s "$TMP/$label.answer" "$TMP/pod_direct.answer" \
        || die "$label's answer '$(cat "$TMP/$label.answer")' differs from the container's '$(cat "$TMP/pod_direct.answer")'"
done

# ---- the runs -------------------------------------------------------------------------

# Every request must have succeeded with a 2xx, in the summary and the log.
check_h2load() {
    local label=$1 out=$TMP/$1.out line total ok s2
    line=$(grep -E '^requests: ' "$out") || die "$label: no 'requests:' line in h2load output"
    total=$(sed -E 's/^requests: ([0-9]+) total.*/\1/' <<<"$line")
    ok=$(sed -E 's/.* ([0-9]+) succeeded.*/\1/' <<<"$line")
    line=$(grep -E '^status codes: ' "$out") || die "$label: no 'status codes:' line in h2load output"
    s2=$(sed -E 's/^status codes: ([0-9]+) 2xx.*/\1/' <<<"$line")
    [ "$total" -gt 0 ] || die "$label: h2load completed no request"
    [ "$ok" -eq "$total" ] && [ "$s2" -eq "$total" ] \
        || die "$label: not every response was 2xx: $(grep -E '^(requests|status codes): ' "$out" | tr '\n' ' ')"
    awk -F'\t' '$2 !~ /^2[0-9][0-9]$/ { bad++ } END { exit bad > 0 }' "$TMP/$label.requests" \
        || die "$label: the per-request log holds non-2xx or failed (-1) streams"
}

# $1 = label (WHERE_WHAT.ROUND), $2 = the container's port (for /stats), $3 = the gateway's
# port and $4 its pid (empty for a direct run). Leaves $TMP/$label.{out,
# requests,stats0,stats1} and, through a gateway, $TMP/$label.cpu.
run() {
    local label=$1 fc_port=$2 gw_port=${3:-} gw_pid=${4:-} r0 c0 k0 t0 r1 c1 k1 t1
    curl -sf "http://127.0.0.1:$fc_port/stats" > "$TMP/$label.stats0" || die "$label: GET /stats"
    if [ -n "$gw_port" ]; then
        r0=$(gw_rows "$gw_port"); c0=$(cpu_us "$gw_pid"); k0=$(sys_us "$gw_pid"); t0=$(date +%s%N)
    fi
    # shellcheck disable=SC2046
    $(netns_of "$label") h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$CLIENTS" \
        -m "$STREAMS" -d "$TMP/row.csv" -H 'content-type: text/csv' -H 'accept: text/csv' \
        --log-file="$TMP/$label.requests" "${URL[${label%.*}]}" > "$TMP/$label.out" 2>&1 \
        || die "h2load against $label exited $?: $(tail -20 "$TMP/$label.out")"
    if [ -n "$gw_port" ]; then
        kill -0 "$gw_pid" 2>/dev/null || die "the gateway of $label (pid $gw_pid) is gone after the run:" \
            "it died, or someone restarted or took down pod $POD (make k8s-e2e?)"
        r1=$(gw_rows "$gw_port"); c1=$(cpu_us "$gw_pid"); k1=$(sys_us "$gw_pid"); t1=$(date +%s%N)
        echo "$(( c1 - c0 )) $(( r1 - r0 )) $(( (t1 - t0) / 1000 )) $(( k1 - k0 ))" > "$TMP/$label.cpu"
    fi
    curl -sf "http://127.0.0.1:$fc_port/stats" > "$TMP/$label.stats1" || die "$label: GET /stats after"
    check_h2load "$label"
}

pod_runs() {
    run "pod_direct.$1" "$POD_MODEL_PORT"
    run "pod_infergate.$1" "$POD_MODEL_PORT" "$POD_GW_PORT" "$POD_GW_PID"
}
out_runs() {
    run "out_direct.$1" "$FC_PORT"
    run "out_infergate.$1" "$FC_PORT" "$OUT_GW_PORT" "$GW_PID"
}
for r in $(seq "$ROUNDS"); do
    if [ $(( r % 2 )) = 1 ]; then pod_runs "$r"; out_runs "$r"; else out_runs "$r"; pod_runs "$r"; fi
done

kill -TERM "$GW_PID"
gw_rc=0
wait "$GW_PID" || gw_rc=$?
GW_PID=
[ "$gw_rc" -eq 0 ] || die "the outside gateway exited $gw_rc on SIGTERM: $(tail -20 "$TMP/infergate.log")"

# ---- report -----------------------------------------------------------------------------

echo "bench-sidecar: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average after: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(uname -sr), $(podman --version)"
echo "  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -z "$(git status --porcelain -- src include load/fake-container docker 2>/dev/null)" ] || echo ' + uncommitted src/include/fake-container/docker changes'), $(h2load --version | head -1), load average before: $LOADAVG"
echo "  images: localhost/infergate:test $IMG_GW, localhost/infergate-model:test $IMG_FC; pod ready ${READY_S} ms after $([ "$PLAYED" = 1 ] && echo 'podman kube play' || echo 'the start (REUSE=1)')"
echo "  load (each run): h2load -D $DURATION --warm-up-time $WARMUP -c $CLIENTS -m $STREAMS -d ROW.csv -H 'content-type: text/csv' -H 'accept: text/csv' ($((CLIENTS * STREAMS)) requests outstanding)"
echo "  row: conf/data/digits.csv line 1 (64 features) -> $(tr -d '\n' < "$TMP/pod_direct.answer") ($(stat -c %s "$TMP/pod_direct.answer") bytes, the same from all four)"
echo "  container: fake-container $MODEL_ARGS on $MODEL (h2c for direct; the gateway's calls over HTTP/1.1 keep-alive)"
echo "  gateway: $SIDECAR_CONF$([ -z "$TUNED" ] || echo " with$TUNED (both gateways; the pod's through an overlay replacing its ConfigMap)")"
echo "  CPU scheduling: the pod's containers in cgroup $POD_CG (cpu.shares $(cat "$POD_CG/cpu.shares" 2>/dev/null || echo '?'), the gateway's quota $(cat "$POD_GW_CG/cpu.cfs_quota_us" 2>/dev/null || echo '?') us per $(cat "$POD_GW_CG/cpu.cfs_period_us" 2>/dev/null || echo '?')); outside: $([ -n "$OUT_CG" ] && echo "cgroup $OUT_CG (cpu.shares 1024, OUTSIDE_CGROUP=1)" || echo "plain processes, each thread its own share")"
echo "    ($(grep -E '^(workers|max_batch_rows|max_delay_us|max_inflight) ' "$TMP/sidecar.conf" | tr '\n' ',' | sed 's/,$//; s/,/, /g'))"
echo "  pod:     $([ "$CLIENT_NETNS" = pod ] && echo "clients in the pod's network namespace (CLIENT_NETNS=pod): 127.0.0.1:8081" || echo "clients on the host (CLIENT_NETNS=host): 127.0.0.1:$POD_GW_PORT") -> infergate -> 127.0.0.1:8080 in the pod; direct $([ "$CLIENT_NETNS" = pod ] && echo "127.0.0.1:8080" || echo "127.0.0.1:$POD_MODEL_PORT (hostPorts of $OVERLAY)"); pod network MTU $(podman exec "$GW_C" cat /sys/class/net/eth0/mtu 2>/dev/null || echo '?')$([ -z "$POD_NET" ] || echo " ($POD_NET, POD_NETWORK_MTU)")"
echo "  outside: bin/infergate 127.0.0.1:$OUT_GW_PORT -> bin/fake-container 127.0.0.1:$FC_PORT (processes on the host)"
echo

"$PY" - "$TMP" "$DURATION" "$ROUNDS" <<'EOF'
import json
import math
import re
import statistics
import sys

tmp, duration, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def stats(label):
    with open("%s/%s.out" % (tmp, label)) as f:
        out = f.read()
    m = re.search(r"^finished in [^,]+, ([0-9.]+) req/s", out, re.M)
    if not m:
        sys.exit("bench-sidecar: BROKEN RUN: no req/s in h2load output for " + label)
    lat = sorted(int(line.split("\t")[2]) for line in open("%s/%s.requests" % (tmp, label)))
    n = len(lat)

    def pct(p):  # nearest rank
        return lat[max(0, math.ceil(p / 100.0 * n) - 1)] / 1000.0

    s0 = json.load(open("%s/%s.stats0" % (tmp, label)))
    s1 = json.load(open("%s/%s.stats1" % (tmp, label)))
    calls, rows = s1["calls"] - s0["calls"], s1["rows"] - s0["rows"]
    r = {"rps": float(m.group(1)), "n": n, "p50": pct(50), "p99": pct(99), "max": lat[-1] / 1000.0,
         "rpc": rows / calls if calls else 0.0, "cpu": None}
    try:
        cpu_us, grows, wall_us, sys_us = (int(v) for v in open("%s/%s.cpu" % (tmp, label)).read().split())
        r["cpu"] = cpu_us / grows if grows else float("inf")
        r["sys"] = sys_us / grows if grows else float("inf")
        r["cpus"] = cpu_us / wall_us
    except FileNotFoundError:
        pass
    return r


runs = [("pod_direct", "pod, direct"), ("pod_infergate", "pod, infergate"),
        ("out_direct", "outside, direct"), ("out_infergate", "outside, infergate")]
print("%-22s %9s %9s %8s %8s %8s %9s %23s" % ("run", "rows/s", "requests", "p50 ms", "p99 ms",
                                              "max ms", "rows/call", "gw us/row (sys; CPUs)"))
all_s = {k: [] for k, _ in runs}
for rnd in range(1, rounds + 1):
    for k, name in runs:
        r = stats("%s.%d" % (k, rnd))
        all_s[k].append(r)
        print("%-22s %9.0f %9d %8.3f %8.3f %8.3f %9.1f %23s" % (
            name + ("" if rounds == 1 else " #%d" % rnd), r["rps"], r["n"], r["p50"], r["p99"],
            r["max"], r["rpc"],
            "-" if r["cpu"] is None else "%.2f (%.2f; %.2f)" % (r["cpu"], r["sys"], r["cpus"])))
# Medians over the rounds (the single figures when ROUNDS=1).
s = {k: {f: statistics.median(x[f] for x in v) for f in ("rps", "p99")} for k, v in all_s.items()}
for k in ("pod_infergate", "out_infergate"):
    s[k]["cpu"] = statistics.median(x["cpu"] for x in all_s[k])
    s[k]["sys"] = statistics.median(x["sys"] for x in all_s[k])
if rounds > 1:
    print()
    print("medians over %d rounds:" % rounds)
    for k, name in runs:
        print("  %-20s %9.0f rows/s, p99 %.3f ms" % (name, s[k]["rps"], s[k]["p99"]))
pod_ratio = s["pod_infergate"]["rps"] / s["pod_direct"]["rps"]
out_ratio = s["out_infergate"]["rps"] / s["out_direct"]["rps"]
rel = s["pod_infergate"]["rps"] / s["out_infergate"]["rps"]
print()
print("ratio infergate/direct rows/s: in the pod %.1f, outside %.1f" % (pod_ratio, out_ratio))
print("in-pod ratio %.1f   target >= 50: %s" % (pod_ratio, "MET" if pod_ratio >= 50 else "MISSED"))
print("in-pod infergate p99: %.3f ms, outside %.3f ms" % (s["pod_infergate"]["p99"],
                                                          s["out_infergate"]["p99"]))
print("gateway CPU per row: in the pod %.2f us (system %.2f), outside %.2f us (system %.2f):\n"
      "  %+.1f %% (less moved by the machine's other load than rows/s is)" % (
          s["pod_infergate"]["cpu"], s["pod_infergate"]["sys"], s["out_infergate"]["cpu"],
          s["out_infergate"]["sys"], (s["pod_infergate"]["cpu"] / s["out_infergate"]["cpu"] - 1) * 100))
print("in-pod infergate rows/s / outside: %.3f (%+.1f %%)   target no more than 10 %% below: %s"
      % (rel, (rel - 1) * 100, "MET" if rel >= 0.9 else "MISSED"))
print()
print("rows/s: h2load's req/s over the %d s measured (warm-up excluded), one row per request;\n"
      "  with several rounds, the ratios and targets use the medians.\n"
      "p50/p99/max: nearest rank over every measured request in h2load's --log-file.\n"
      "rows/call: the container's GET /stats over the run. gw us/row: the gateway process's\n"
      "  utime+stime (/proc/PID/stat, all threads; in the pod the container's PID as the host\n"
      "  sees it) over the run / the rows its /metrics counted; sys: stime alone (the kernel's\n"
      "  share: sockets, and in the pod the veth, bridge and NAT its packets cross)." % duration)
EOF
