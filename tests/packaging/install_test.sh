#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the warren .deb into a throwaway root and purges it again:
#   - the root is this machine's own, seen through an overlay (lower: /,
#     upper: a temporary folder) in a private mount namespace: dpkg, adduser
#     and the maintainer scripts run chrooted in it with the packages at
#     hand, and every change lands in the temporary folder, none on the
#     machine;
#   - after `dpkg -i`: the system user and group, the conffile (root:warren
#     0640 through a statoverride), the plugin folder, the unit enabled and
#     not started, and the installed `warrend --check-config
#     /etc/warren/warren.yaml` says OK;
#   - after `dpkg --purge`: everything the package put there is gone, and
#     what is left is what Debian policy allows (the system user and group,
#     dpkg's own records and logs).
# Needs root and overlayfs (mount in a user-less private namespace).
#   install_test.sh DEB
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: install_test.sh DEB" >&2; exit 2; }
deb=$(realpath "$1")

fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "needs root (it mounts an overlay and runs dpkg in a chroot)"

work=$(mktemp -d /tmp/warren-install-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/overlay-work" "$work/root"
cp "$deb" "$work/warren.deb"

# Everything below runs in a private mount namespace: the overlay and the
# bind mounts disappear with it, whatever happens.
unshare --mount --propagation private bash -s "$work" <<'INNER' || fail "see above"
set -euo pipefail
work=$1
root=$work/root
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
step() { echo "install_test: $*"; }
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/overlay-work" "$root" ||
  fail "cannot mount an overlay of / (overlayfs and CAP_SYS_ADMIN are needed)"
for fs in proc sys dev dev/pts; do mount --bind "/$fs" "$root/$fs"; done
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root/run"  # no /run/systemd/system: nothing is started
cp "$work/warren.deb" "$root/tmp/warren.deb"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }

if in_root dpkg-query -W warren >/dev/null 2>&1; then
  # Not a failure of the package: this machine has warren installed, and
  # the test must start from a root without it.
  in_root dpkg --purge warren >/dev/null
fi
in_root getent passwd warren >/dev/null && fail "the root already has a warren user"
# What a purge may leave: dpkg's records and logs, and the system user and
# group (with the files adduser keeps in step).
allowed='^/(etc/(passwd|group|shadow|gshadow|subuid|subgid)-?|var/lib/dpkg/.*|var/log/(dpkg|alternatives)\.log|var/cache/debconf/.*|var/lib/systemd/deb-systemd-helper-(enabled|masked)(/.*)?|etc/systemd/system(/multi-user\.target\.wants)?|etc/\.pwd\.lock|var/log/apt/.*|var/lib/systemd|var/cache/man(/.*)?)$'

step "dpkg -i $(basename "$(readlink -f "$work/warren.deb")")"
in_root dpkg -i /tmp/warren.deb >"$work/dpkg-install.log" 2>&1 ||
  fail "dpkg -i failed:"$'\n'"$(cat "$work/dpkg-install.log")"

# The system user and group, without a home or a login shell.
IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd warren) || fail "no warren user"
((uid < 1000)) || fail "warren is not a system user (uid $uid)"
[[ $(in_root getent group warren | cut -d: -f3) == "$gid" ]] || fail "no warren group of gid $gid"
[[ $home == /nonexistent && $shell == /usr/sbin/nologin ]] || fail "home $home, shell $shell"
[[ ! -e $root/nonexistent ]] || fail "a home folder was created"
# The conffile, readable by root and warren alone.
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' warren)
grep -q '^ /etc/warren/warren.yaml ' <<<"$conffiles" ||
  fail "/etc/warren/warren.yaml is not a conffile"
[[ $(in_root stat -c '%U:%G %a' /etc/warren/warren.yaml) == "root:warren 640" ]] ||
  fail "warren.yaml is $(in_root stat -c '%U:%G %a' /etc/warren/warren.yaml)"
override=$(in_root dpkg-statoverride --list /etc/warren/warren.yaml || true)
[[ $override == "root warren 640 /etc/warren/warren.yaml" ]] ||
  fail "the statoverride of warren.yaml is '$override'"
# The plugin folder named by the shipped configuration.
[[ -f $root/usr/lib/warren/plugins/sum.so ]] || fail "no /usr/lib/warren/plugins/sum.so"
grep -q '^  dir: /usr/lib/warren/plugins$' "$root/etc/warren/warren.yaml" ||
  fail "the shipped configuration does not name /usr/lib/warren/plugins"
# The unit: installed, enabled, not started.
[[ -f $root/lib/systemd/system/warrend.service ]] || fail "no warrend.service"
[[ -L $root/etc/systemd/system/multi-user.target.wants/warrend.service ]] ||
  fail "warrend.service is not enabled"
# The installed warrend checks the installed configuration, as the unit's
# ExecStartPre would, as the warren user.
check=$(in_root setpriv --reuid=warren --regid=warren --init-groups \
  /usr/bin/warrend --check-config /etc/warren/warren.yaml 2>&1) ||
  fail "warrend --check-config /etc/warren/warren.yaml: $check"
[[ $check == *OK* ]] || fail "warrend --check-config said: $check"
step "installed: user warren ($uid:$gid, nologin), conffile root:warren 0640, plugins, unit enabled; check-config: $check"

step "dpkg --purge warren"
in_root dpkg --purge warren >"$work/dpkg-purge.log" 2>&1 ||
  fail "dpkg --purge failed:"$'\n'"$(cat "$work/dpkg-purge.log")"
for path in /usr/bin/warrend /usr/lib/warren /etc/warren /lib/systemd/system/warrend.service \
  /etc/systemd/system/multi-user.target.wants/warrend.service /usr/share/doc/warren; do
  [[ ! -e $root$path && ! -L $root$path ]] || fail "$path is left after the purge"
done
[[ -z $(in_root dpkg-statoverride --list /etc/warren/warren.yaml || true) ]] ||
  fail "the statoverride is left after the purge"
# Every path the install and the purge left in the overlay's upper layer
# (whiteouts of deleted files included) must be one policy allows.
left=$(cd "$work/upper" && find . -mindepth 1 | sed 's|^\.||' | grep -vE '^/(tmp|run|proc|sys|dev)(/|$)' |
  while IFS= read -r path; do
    [[ -d $work/upper$path && ! -L $work/upper$path ]] && continue  # folders are judged by their content
    [[ $path =~ $allowed ]] || echo "$path"
  done)
[[ -z $left ]] || fail "left after the purge, beyond what policy allows:"$'\n'"$left"
in_root getent passwd warren >/dev/null || fail "the purge removed the warren user (policy keeps it)"
step "purged: nothing left but the system user and dpkg's records"
INNER
echo "install_test: OK"
