#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The manual pages the build made (docs/man): each renders without a single
# warning from man/groff, each program's page carries every option of its
# --help and its --version, warrend(8) its exit codes and signals, and
# warren.yaml(5) every key of the schema's sections (config_test checks the
# keys themselves).
#   man_pages_test.sh BUILD_DIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: man_pages_test.sh BUILD_DIR" >&2; exit 2; }
build=$(realpath "$1")
pages=$build/docs/man

fail() { echo "man_pages_test: FAIL: $*" >&2; exit 1; }

render() {  # PAGE -> plain text on stdout; fails on any warning
  local page=$1 warnings
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "$(basename "$page") renders with warnings:"$'\n'"$warnings"
  LC_ALL=C.UTF-8 MANWIDTH=200 MAN_KEEP_FORMATTING=0 man -l "$page" 2>/dev/null | col -b
}

for entry in daemon/warrend:8 client/warren-call:1 client/warren-bench:1; do
  program=$build/${entry%:*}
  name=$(basename "$program")
  page=$pages/$name.${entry#*:}
  [[ -f $page && -f $page.gz ]] || fail "no $page(.gz)"
  text=$(render "$page")
  # Every long option of --help, and the version line.
  options=$("$program" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
  [[ -n $options ]] || fail "$name --help lists no options"
  while IFS= read -r option; do
    grep -qF -- "$option" <<<"$text" || fail "$name.${entry#*:} lacks $option of --help"
  done <<<"$options"
  version=$("$program" --version)
  grep -qF "${version##* }" <<<"$text" || fail "$name.${entry#*:} lacks the version of '$version'"
  grep -q "^SEE ALSO" <<<"$text" || fail "$name.${entry#*:} has no SEE ALSO"
  echo "man_pages_test: $name.${entry#*:}: $(wc -l <<<"$options") options, version ${version##* }"
done

warrend_text=$(render "$pages/warrend.8")
for needle in "Exit status:" "Signals:" "SIGHUP" "SIGTERM" "78" "70" "/etc/warren/warren.yaml"; do
  grep -qF -- "$needle" <<<"$warrend_text" || fail "warrend.8 lacks '$needle'"
done

[[ -f $pages/warren.yaml.5.gz ]] || fail "no warren.yaml.5.gz"
config_text=$(render "$pages/warren.yaml.5")
for needle in "broker.url" "broker.reconnect.max_delay" "handler_timeout" "isolation" \
  "dead_letter.exchange" "metrics.listen" "EXAMPLE" "SEE ALSO"; do
  grep -qF -- "$needle" <<<"$config_text" || fail "warren.yaml.5 lacks '$needle'"
done
echo "man_pages_test: OK"
