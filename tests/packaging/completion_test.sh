#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bash completions (packaging/bash-completion) against each program's
# --help, so that they cannot drift: completing "-" offers exactly the
# options --help lists; after an option that takes a value, no option is
# offered; and the values offered for --log-level and --reply-mode are the
# ones --help names.
#   completion_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: completion_test.sh SOURCE_DIR BUILD_DIR" >&2; exit 2; }
completions=$(realpath "$1")/packaging/bash-completion
build=$(realpath "$2")

fail() { echo "completion_test: FAIL: $*" >&2; exit 1; }

# complete NAME FUNCTION WORD... -> the candidates, one per line, sorted
complete_words() {
  local name=$1 function=$2
  shift 2
  bash -c '
    source "$1"; function=$2; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    "$function"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completions/$name" "$function" "$name" "$@" |
    { grep -v '^$' || true; } | sort
}

for entry in warrend:daemon/warrend:_warrend warren-call:client/warren-call:_warren_call \
  warren-bench:client/warren-bench:_warren_bench; do
  IFS=: read -r name program function <<<"$entry"
  help=$("$build/$program" --help)
  # Option lines start with two spaces: "  -c,--config FILE=..." or "  --json".
  option_lines=$(grep -E '^  -' <<<"$help")
  from_help=$(sed -E 's/^  ([^ ]+).*/\1/' <<<"$option_lines" | tr ',' '\n' | sort -u)
  offered=$(complete_words "$name" "$function" -)
  [[ $offered == "$from_help" ]] ||
    fail "$name: completing '-' offers"$'\n'"$offered"$'\n'"but --help lists"$'\n'"$from_help"

  # Options followed by a value in --help ("--timeout FLOAT:...", "--broker URL").
  valued=$(grep -E '^  [^ ]+ [A-Z]' <<<"$option_lines" | grep -vE '^  [^ ]+ (Needs|Excludes):' |
    sed -E 's/^  ([^ ]+).*/\1/' | tr ',' '\n')
  count=0
  while IFS= read -r option; do
    [[ -n $option ]] || continue
    count=$((count + 1))
    after=$(complete_words "$name" "$function" "$option" "")
    ! grep -q '^-' <<<"$after" || fail "$name: after $option (which takes a value) options are offered"
  done <<<"$valued"
  echo "completion_test: $name: $(wc -l <<<"$from_help") options as --help lists them, $count take a value"
done

levels=$(complete_words warrend _warrend --log-level "" | tr '\n' ',' | sed 's/,$//')
help_levels=$("$build/daemon/warrend" --help | grep -oE 'LEVEL:\{[^}]*\}' | sed -E 's/.*\{(.*)\}/\1/' |
  tr ',' '\n' | sort | tr '\n' ',' | sed 's/,$//')
[[ $levels == "$help_levels" ]] || fail "warrend --log-level completes '$levels', --help says '$help_levels'"
for name in warren-call warren-bench; do
  function=_${name//-/_}
  modes=$(complete_words "$name" "$function" --reply-mode "" | tr '\n' ' ')
  [[ $modes == "direct exclusive " ]] || fail "$name --reply-mode completes '$modes'"
done
echo "completion_test: OK"
