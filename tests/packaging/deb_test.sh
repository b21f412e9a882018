#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The .deb packages: cpack builds them from this build tree (no rebuild: it
# installs the binaries already built, with prefix /usr, into a staging
# folder), dpkg-deb lists every promised path, the control data holds the
# conffile and the maintainer scripts, lintian reports no error, and the
# package installs into and purges from a throwaway root (install_test.sh).
#   deb_test.sh BUILD_DIR SOURCE_DIR VERSION [hardened|plain]
# hardened: the tree was built with dpkg-buildflags' hardening
# (scripts/hardening-flags), so lintian -I must not report a hardening tag.
set -euo pipefail
build_dir=$(realpath "$1")
source_dir=$2
version=$3
build_kind=${4:-plain}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== cpack"
# -B: packages and cpack's staging tree go to the temporary folder, not
# into the build tree.
(cd "$tmp" && cpack --config "$build_dir/CPackConfig.cmake" -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
  fail "cpack failed:"$'\n'"$(cat "$tmp/cpack.log")"
arch=$(dpkg --print-architecture)
deb=$tmp/out/warren_${version}_${arch}.deb
dev=$tmp/out/warren-dev_${version}_${arch}.deb
lib=$tmp/out/libwarren-client0_${version}_${arch}.deb
[[ -f $deb ]] || fail "no $(basename "$deb"); cpack made: $(ls "$tmp/out")"
[[ -f $dev ]] || fail "no $(basename "$dev"); cpack made: $(ls "$tmp/out")"
[[ -f $lib ]] || fail "no $(basename "$lib"); cpack made: $(ls "$tmp/out")"
echo "built $(basename "$deb"), $(basename "$dev") and $(basename "$lib")"

expect_paths() {  # DEB PATH...
  local package=$1
  shift
  local listing
  listing=$(dpkg-deb -c "$package" | awk '{print $6}')
  for path in "$@"; do
    grep -qxF "./$path" <<<"$listing" || fail "$(basename "$package") lacks /$path; it has:"$'\n'"$listing"
  done
}
expect_paths "$deb" usr/bin/warrend usr/bin/warren-call usr/bin/warren-bench \
  usr/lib/warren/plugins/sum.so usr/lib/warren/plugins/upper.so \
  etc/warren/warren.yaml lib/systemd/system/warrend.service \
  usr/share/doc/warren/README.md usr/share/doc/warren/operations.md \
  usr/share/doc/warren/configuration.md usr/share/doc/warren/plugins.md \
  usr/share/doc/warren/packaging.md \
  usr/share/doc/warren/copyright usr/share/doc/warren/changelog.gz \
  usr/share/man/man8/warrend.8.gz usr/share/man/man1/warren-call.1.gz \
  usr/share/man/man1/warren-bench.1.gz usr/share/man/man5/warren.yaml.5.gz \
  usr/share/bash-completion/completions/warrend usr/share/bash-completion/completions/warren-call \
  usr/share/bash-completion/completions/warren-bench
expect_paths "$dev" usr/include/warren/plugin.h usr/include/warren/plugin.hpp \
  usr/share/cmake/warren/warrenConfig.cmake usr/share/cmake/warren/warrenConfigVersion.cmake \
  usr/share/cmake/warren/warrenAddPlugin.cmake \
  usr/share/doc/warren-dev/copyright usr/share/doc/warren-dev/changelog.gz \
  usr/include/warren/client.hpp "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libwarren-client.so" \
  "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig/warren-client.pc" \
  usr/share/cmake/warren/warrenClientTargets.cmake
expect_paths "$lib" "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libwarren-client.so.0" \
  "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libwarren-client.so.${version}" \
  usr/share/doc/libwarren-client0/copyright usr/share/doc/libwarren-client0/changelog.gz
# The SDK package carries no binaries, the daemon package no headers.
# (Listings kept first: under pipefail, `dpkg-deb -c | grep -q` fails
# whenever grep stops reading before dpkg-deb is done.)
dev_listing=$(dpkg-deb -c "$dev")
deb_listing=$(dpkg-deb -c "$deb")
! grep -q '/usr/bin/' <<<"$dev_listing" || fail "warren-dev carries programs"
! grep -q '/usr/include/' <<<"$deb_listing" || fail "warren carries headers"
echo "dpkg-deb -c: every promised path is there"

# The files are the tree's own, unchanged for prefix /usr.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/warren/warren.yaml | cmp -s - "$source_dir/config/warren.yaml" ||
  fail "/etc/warren/warren.yaml in the .deb differs from config/warren.yaml"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/warrend.service |
  cmp -s - "$source_dir/systemd/warrend.service" ||
  fail "warrend.service in the .deb differs from systemd/warrend.service"

field() { dpkg-deb -f "$1" "$2"; }
[[ $(field "$deb" Package) == warren ]] || fail "Package: $(field "$deb" Package)"
[[ $(field "$deb" Version) == "$version" ]] || fail "Version: $(field "$deb" Version)"
[[ $(field "$deb" Architecture) == "$arch" ]] || fail "Architecture: $(field "$deb" Architecture)"
[[ $(field "$dev" Architecture) == "$arch" ]] || fail "warren-dev Architecture: $(field "$dev" Architecture)"
# The library package: named after the SONAME, with shlibs and the
# ldconfig trigger; warren-dev needs exactly its version.
[[ $(dpkg-deb -I "$lib" shlibs) == "libwarren-client 0 libwarren-client0 (>= $version)" ]] ||
  fail "libwarren-client0's shlibs: $(dpkg-deb -I "$lib" shlibs)"
[[ $(dpkg-deb -I "$lib" triggers) == "activate-noawait ldconfig" ]] ||
  fail "libwarren-client0 has no ldconfig trigger"
[[ $(field "$dev" Depends) == "libwarren-client0 (= $version)" ]] ||
  fail "warren-dev Depends: $(field "$dev" Depends)"
[[ $(field "$lib" Depends) == *librabbitmq4* ]] || fail "libwarren-client0 Depends: $(field "$lib" Depends)"
depends=$(field "$deb" Depends)
for needed in adduser init-system-helpers libc6 librabbitmq4; do
  [[ $depends == *"$needed"* ]] || fail "Depends lacks $needed: $depends"
done

info=$(dpkg-deb -I "$deb")
for member in conffiles postinst prerm postrm md5sums; do
  grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$member( |$)" <<<"$info" ||
    fail "the control archive lacks $member:"$'\n'"$info"
done
[[ $(dpkg-deb -I "$deb" conffiles) == /etc/warren/warren.yaml ]] ||
  fail "conffiles is not exactly /etc/warren/warren.yaml: $(dpkg-deb -I "$deb" conffiles)"
mkdir "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
for script in postinst prerm postrm; do
  [[ -x $tmp/control/$script ]] || fail "$script is not executable"
  sh -n "$tmp/control/$script" || fail "$script is not valid sh"
done
grep -q 'adduser .*--system .*warren' "$tmp/control/postinst" || fail "postinst creates no system user"
grep -q 'deb-systemd-helper enable warrend.service' "$tmp/control/postinst" ||
  fail "postinst does not enable warrend.service"
! grep -qE 'deb-systemd-invoke (start|restart) ' "$tmp/control/postinst" ||
  fail "postinst starts warrend on install"
grep -q 'deb-systemd-invoke stop warrend.service' "$tmp/control/prerm" || fail "prerm does not stop warrend"
echo "dpkg-deb -I: conffiles and maintainer scripts: OK"

command -v lintian >/dev/null || fail "lintian is not installed (scripts/install-deps installs it)"
echo "== lintian"
status=0
lintian --fail-on error --tag-display-limit 0 "$deb" "$dev" "$lib" >"$tmp/lintian.log" 2>&1 || status=$?
cat "$tmp/lintian.log"
[[ $status == 0 ]] || fail "lintian reports errors (exit $status)"
grep -q '^E: ' "$tmp/lintian.log" && fail "lintian reports errors"
echo "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.log" || true) warning(s))"

# The licence: a machine-readable copyright file that lintian accepts, at
# every level (-I: info tags too), naming the licence of LICENSE.
lintian -I --tag-display-limit 0 "$deb" "$dev" "$lib" >"$tmp/lintian-info.log" 2>&1 || true
! grep -iE 'copyright|licen[cs]e' "$tmp/lintian-info.log" ||
  fail "lintian -I has tags about the copyright file"
copyright=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/warren/copyright)
grep -qx 'License: Apache-2.0' <<<"$copyright" || fail "the copyright file names no Apache-2.0 licence"
grep -q 'Apache License' "$source_dir/LICENSE" || fail "LICENSE is not the Apache License"
echo "copyright: Apache-2.0, no lintian tags about it"

# A manual page for each program and the configuration file, and nothing
# lintian finds wrong with them (no override hides a missing one).
! grep -E 'no-manual-page|manpage-|groff-message' "$tmp/lintian-info.log" ||
  fail "lintian -I has tags about the manual pages"
! grep -q 'lintian/overrides' <<<"$deb_listing" || fail "the package carries lintian overrides"
echo "manual pages: warrend(8), warren-call(1), warren-bench(1), warren.yaml(5); no lintian tags"

if [[ $build_kind == hardened ]]; then
  ! grep -E 'hardening-' "$tmp/lintian-info.log" ||
    fail "built with dpkg-buildflags, yet lintian -I reports hardening tags"
  echo "hardening: lintian -I has no hardening tag (bindnow, fortify, relro, PIE)"
fi

echo "== install and purge in a throwaway root"
bash "$(dirname "$0")/install_test.sh" "$deb" || fail "the install and purge test failed"
