#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/demo --once as a user who cloned only this repository runs it: no
# seed beside the clone (WARREN_SEED_DIR points nowhere), no broker on
# localhost:5672. It must start its throwaway broker and warrend, get the 10
# right sums from warren-call and 10 from the Python caller of
# examples/python, say that it skipped the seed's client, and stop cleanly.
#
#   demo_script_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: demo_script_test.sh SOURCE_DIR BUILD_DIR" >&2; exit 2; }
source_dir=$1
build_dir=$(cd "$2" && pwd)

fail() { echo "demo_script_test: FAIL: $*" >&2; exit 1; }

if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  fail "a broker already answers on localhost:5672; the demo would use it instead of its own"
fi

output=$(WARREN_DEMO_BUILD_DIR=$build_dir WARREN_SEED_DIR=/nonexistent/seed \
  timeout 300 "$source_dir/scripts/demo" --once 2>&1) || fail "scripts/demo --once exited $?: $output"
echo "$output"

# The lines "sum(x, y)=r" between the header naming a caller and the next
# header: 10 of them, each with r = x + y.
check_section() {
  local header=$1 sums
  sums=$(awk -v header="$header" '
    index($0, "== ") == 1 { inside = (index($0, header) > 0); next }
    inside && /^sum\(/ { print }' <<<"$output")
  [[ $(grep -c . <<<"$sums") == 10 ]] || fail "$header: not 10 answers: $sums"
  while IFS= read -r line; do
    [[ $line =~ ^sum\((-?[0-9]+),\ (-?[0-9]+)\)=(-?[0-9]+)$ ]] || fail "$header: malformed: $line"
    ((BASH_REMATCH[1] + BASH_REMATCH[2] == BASH_REMATCH[3])) || fail "$header: wrong sum: $line"
  done <<<"$sums"
}
grep -q "^== starting a throwaway RabbitMQ on localhost:5672" <<<"$output" ||
  fail "the demo did not start its own broker"
check_section "warren-call: 10 sums at once"
check_section "the Python caller of examples/python: 10 sums at once"
grep -q "the seed's own client is not beside this clone: /nonexistent/seed; skipped" <<<"$output" ||
  fail "no line saying the seed's client was skipped"
grep -q "stopped cleanly" <<<"$output" || fail "warrend did not stop cleanly"
if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  fail "the demo's throwaway broker still answers on localhost:5672"
fi
echo "demo_script_test: OK"
