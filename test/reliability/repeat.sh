#!/usr/bin/env bash
# Runs one test file N times in a row and prints how many runs passed: test/reliability/repeat.sh N FILE [vitest args…]
# A run's output is kept in $REPEAT_LOG_DIR (default /tmp/repeat-logs) when it fails. Exit status: 0 only when every run passed.
set -uo pipefail
n=${1:?usage: repeat.sh N FILE [vitest args…]}
file=${2:?usage: repeat.sh N FILE [vitest args…]}
shift 2
cd "$(dirname "$0")/../.."
logs=${REPEAT_LOG_DIR:-/tmp/repeat-logs}
mkdir -p "$logs"
pass=0
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  if npx vitest run "$file" "$@" >"$logs/run-$i.log" 2>&1; then
    pass=$((pass + 1))
    echo "run $i/$n: passed in $(($(date +%s) - start)) s"
    # the kill points this run chose (each with the variable that pins it)
    grep -ao '\[crash scenario\].*' "$logs/run-$i.log" | sed 's/^/    /'
    rm -f "$logs/run-$i.log"
  else
    echo "run $i/$n: FAILED in $(($(date +%s) - start)) s (log: $logs/run-$i.log)"
    grep -ao '\[crash scenario\].*' "$logs/run-$i.log" | sed 's/^/    /'
  fi
done
echo "$pass/$n passed: $file"
[ "$pass" -eq "$n" ]
