#!/usr/bin/env bash
# Run every integration test against the real binary; print one total line.
set -u
cd "$(dirname "$0")/../.."
export INFERGATE_BIN=${INFERGATE_BIN:-bin/infergate}
passed=0 failed=0 broken=0
for t in tests/integration/test_*.py; do
    echo "== $t"
    t0=$(date +%s)
    out=$(/usr/bin/python3 "$t" 2>&1); rc=$?
    echo "$out"
    echo "== $t: $(( $(date +%s) - t0 )) s"
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9.]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        echo "BROKEN: $t exited $rc without a result line"
        broken=$((broken + 1))
        continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed/\1/')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || broken=$((broken + 1))
done
failed=$((failed + broken))
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
