#!/usr/bin/env bash
# Run every integration test against the real binary; print one total line.
# Two of the admin API's tests (test_admin.py and test_admin_adversary.py:
# mostly waiting on deployments and drains, each with its own Redis and
# gateways on free ports), test_review_canary.py and test_fake_container.py
# (mostly waiting on a model's delays and timeouts, with margins of a second
# or more on the times they check) run side by side first; then the others
# one at a time (test_admin_adversary2.py among them: its loader and concurrent-update
# checks measure time and order, and a busy machine fails them).
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

side=(tests/integration/test_admin.py tests/integration/test_admin_adversary.py
      tests/integration/test_review_canary.py tests/integration/test_fake_container.py)
t0=$(date +%s)
for t in "${side[@]}"; do run_one "$t" & done
wait
for t in "${side[@]}"; do
    name=$(basename "$t")
    read -r rc secs < "$out_dir/$name.rc"
    echo "== $t"
    tally "$t" "$out_dir/$name.out" "$rc"
    echo "== $t: $secs s (side by side)"
done
echo "== the tests side by side: $(( $(date +%s) - t0 )) s"

for t in tests/integration/test_*.py; do
    case " ${side[*]} " in *" $t "*) continue ;; esac
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
