#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# systemd/warrend.service: `systemd-analyze verify` accepts it without a
# single complaint, and `systemd-analyze security` rates it 2.0 or lower.
#   systemd_unit_test.sh SOURCE_DIR WARREND
set -euo pipefail
source_dir=$1
warrend=$(realpath "$2")
unit=$source_dir/systemd/warrend.service

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (package systemd; scripts/install-deps)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify refuses a unit whose ExecStart= binary does not exist, and the unit
# names the packaged /usr/bin/warrend. So verify a copy, same name, whose
# ExecStart= runs the warrend just built; every other line is the unit's own.
# (--root= would need a whole tree with /usr/bin/warrend, /bin/kill and the
# units the file refers to.) --man=false: the unit documents itself with
# file: links, and verify must not depend on man pages being installed.
grep -q '^ExecStart=/usr/bin/warrend ' "$unit" || fail "$unit: ExecStart= does not run /usr/bin/warrend"
sed "s|^ExecStart=/usr/bin/warrend |ExecStart=$warrend |" "$unit" >"$tmp/warrend.service"
# verify exits 0 on unknown keys and bad values ("..., ignoring"): any output fails.
if ! output=$(systemd-analyze verify --man=false "$tmp/warrend.service" 2>&1) || [[ -n $output ]]; then
  fail "systemd-analyze verify complains about $unit:"$'\n'"$output"
fi
echo "systemd-analyze verify: OK"

# --threshold= is on the 0-100 scale of the exposure level (2.0 -> 20).
report=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) ||
  fail "systemd-analyze security rates $unit above 2.0:"$'\n'"$report"
overall=$(grep -o 'Overall exposure level for warrend.service: [0-9.]*' <<<"$report") ||
  fail "no overall exposure level in:"$'\n'"$report"
echo "systemd-analyze security: ${overall##* } (at most 2.0)"
