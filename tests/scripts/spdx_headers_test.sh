#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file of the tree names its licence in its first lines
# (`SPDX-License-Identifier: Apache-2.0`, the licence of LICENSE): C and C++
# sources and headers, CMake files, Python, shell and the programs in
# scripts/ and bench/. Test data, corpora, configuration and docs are not
# code and carry none.
#
#   spdx_headers_test.sh SOURCE_DIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: spdx_headers_test.sh SOURCE_DIR" >&2; exit 2; }
cd "$1"

# The tracked files of a clone, or every file of an exported tree.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard)
else
  files=$(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||')
fi
code=$(grep -E '\.(c|h|cpp|hpp|py|sh|cmake)$|(^|/)CMakeLists\.txt$|^scripts/|^bench/(run|brokers|scale)$|^tests/fixtures/exec/' <<<"$files")

missing=()
checked=0
while IFS= read -r file; do
  [[ -f $file ]] || continue
  checked=$((checked + 1))
  head -n 3 "$file" | grep -q 'SPDX-License-Identifier: Apache-2.0' || missing+=("$file")
done <<<"$code"
((checked > 200)) || { echo "spdx_headers_test: only $checked files found in $PWD" >&2; exit 1; }
if ((${#missing[@]} > 0)); then
  echo "spdx_headers_test: FAIL: no 'SPDX-License-Identifier: Apache-2.0' in the first 3 lines of:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "spdx_headers_test: all $checked source files name Apache-2.0"
