#!/usr/bin/env bash
# Run every integration test against the real binary; print one total line.
# Two groups of tests run side by side, each test with its own gateways,
# Redis and fakes on free ports, before the others run one at a time:
# 1. two of the admin API's tests (test_admin.py and test_admin_adversary.py:
#    mostly waiting on deployments and drains), test_review_canary.py and
#    test_fake_container.py (mostly waiting on a model's delays and timeouts,
#    with margins of a second or more on the times they check);
# 2. tests that mostly wait on fakes' delays, timeouts and periods, with
#    margins of a second or more on the times they check, and together use
#    under half a CPU (measured: 23 s of CPU over 208 s of their own time).
# The rest run one at a time: they keep the CPUs busy (h2load, big bodies)
# or measure time and order closely (test_admin_adversary2.py's loader and
# concurrent updates, test_sigterm.py's signal races), and a busy machine
# fails them.
set -u
cd "$(dirname "$0")/../.."
export INFERGATE_BIN=${INFERGATE_BIN:-bin/infergate}
passed=0 failed=0 broken=0
out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT

# tally <test> <its output file> <its exit status>
tally() {
    local t=$1 file=$2 rc=$3 line p f
    cat "$file"
    line=$(grep -E '^[a-z_0-9.]+: [0-9]+ passed, [0-9]+ failed$' "$file" | tail -1)
    if [ -z "$line" ]; then
        echo "BROKEN: $t exited $rc without a result line"
        broken=$((broken + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed/\1/')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || broken=$((broken + 1))
}

# run_one <test>: in the background, its output, status and time to files
run_one() {
    local t=$1 name t0 rc
    name=$(basename "$t")
    t0=$(date +%s)
    /usr/bin/python3 "$t" > "$out_dir/$name.out" 2>&1; rc=$?
    echo "$rc $(( $(date +%s) - t0 ))" > "$out_dir/$name.rc"
}

# run_side <group number> <test>...: side by side, then each one's output in turn
run_side() {
    local g=$1 t name rc secs t0
    shift
    t0=$(date +%s)
    for t in "$@"; do run_one "$t" & done
    wait
    for t in "$@"; do
        name=$(basename "$t")
        read -r rc secs < "$out_dir/$name.rc"
        echo "== $t"
        tally "$t" "$out_dir/$name.out" "$rc"
        echo "== $t: $secs s (side by side)"
    done
    echo "== the tests side by side ($g): $(( $(date +%s) - t0 )) s"
}

side1=(tests/integration/test_admin.py tests/integration/test_admin_adversary.py
       tests/integration/test_review_canary.py tests/integration/test_fake_container.py)
side2=(tests/integration/test_transform_adversary.py tests/integration/test_upstream_adversary.py
       tests/integration/test_sagemaker_upstream.py tests/integration/test_adversary_http.py
       tests/integration/test_h2_frames.py tests/integration/test_nonfinite.py
       tests/integration/test_review_upstream2.py tests/integration/test_review_today.py
       tests/integration/test_review_stream.py tests/integration/test_review_life.py
       tests/integration/test_review_fair.py tests/integration/test_review_fair2.py)
run_side 1 "${side1[@]}"
run_side 2 "${side2[@]}"

for t in tests/integration/test_*.py; do
    case " ${side1[*]} ${side2[*]} " in *" $t "*) continue ;; esac
    echo "== $t"
    name=$(basename "$t")
    run_one "$t"
    read -r rc secs < "$out_dir/$name.rc"
    tally "$t" "$out_dir/$name.out" "$rc"
    echo "== $t: $secs s"
done
failed=$((failed + broken))
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
