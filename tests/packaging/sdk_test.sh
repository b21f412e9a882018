#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The plugin SDK and the client library from a staged install: `cmake
# --install` into a temporary prefix lays out what was promised;
# plugins/upper, copied out of the tree as an author would, builds against it
# with find_package(warren); warrend --check loads the result with good
# options and refuses bad ones; and a small caller built against
# libwarren-client.so.0, once with find_package(warren) (warren::client) and
# once with pkg-config, calls a running warrend.
#   sdk_test.sh BUILD_DIR SOURCE_DIR WARREND
set -euo pipefail
build_dir=$(realpath "$1")
source_dir=$2
warrend=$(realpath "$3")

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
tmp=$(mktemp -d)
warrend_pid=
broker_dir=
cleanup() {
  [[ -z $warrend_pid ]] || kill "$warrend_pid" 2>/dev/null || true
  if [[ -n $broker_dir ]]; then
    "$source_dir/scripts/rabbitmq-private" stop "$broker_dir" >/dev/null 2>&1 || true
    rm -rf "$broker_dir"
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
stage=$tmp/stage
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

echo "== cmake --install $build_dir --prefix $stage"
cmake --install "$build_dir" --prefix "$stage" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install failed:"$'\n'"$(cat "$tmp/install.log")"
for path in bin/warrend bin/warren-call bin/warren-bench \
  lib/warren/plugins/sum.so lib/warren/plugins/upper.so \
  etc/warren/warren.yaml lib/systemd/system/warrend.service \
  share/doc/warren/README.md share/doc/warren/plugins.md share/doc/warren/packaging.md \
  include/warren/plugin.h include/warren/plugin.hpp \
  share/cmake/warren/warrenConfig.cmake share/cmake/warren/warrenConfigVersion.cmake \
  share/cmake/warren/warrenAddPlugin.cmake share/cmake/warren/warrenClientTargets.cmake \
  include/warren/client.hpp "lib/$multiarch/libwarren-client.so.0" \
  "lib/$multiarch/pkgconfig/warren-client.pc"; do
  [[ -f $stage/$path ]] || fail "the staged install lacks $path"
done
# Debian metadata is for the .deb only (EXCLUDE_FROM_ALL).
[[ ! -e $stage/share/doc/warren/copyright ]] || fail "a plain install should not carry the Debian copyright file"
# Paths inside the installed files follow the prefix.
grep -qxF "  dir: $stage/lib/warren/plugins" "$stage/etc/warren/warren.yaml" ||
  fail "the staged warren.yaml's plugins.dir does not point at $stage/lib/warren/plugins"
grep -qxF "ExecStart=$stage/bin/warrend --config $stage/etc/warren/warren.yaml" \
  "$stage/lib/systemd/system/warrend.service" ||
  fail "the staged unit's ExecStart= does not run $stage/bin/warrend"
output=$("$stage/bin/warrend" --check --config "$stage/etc/warren/warren.yaml" 2>&1) ||
  fail "the staged warrend refuses the staged configuration:"$'\n'"$output"
[[ $output == *"configuration OK"* ]] || fail "no 'configuration OK' from the staged warrend: $output"
echo "staged layout and configuration: OK"

echo "== plugins/upper out of tree, find_package(warren) from $stage"
cp -r "$source_dir/plugins/upper" "$tmp/upper"
rm -rf "$tmp/upper/build"*
cmake -S "$tmp/upper" -B "$tmp/upper-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$stage" >"$tmp/configure.log" 2>&1 ||
  fail "configuring plugins/upper against $stage failed:"$'\n'"$(cat "$tmp/configure.log")"
grep -q "warren_DIR:PATH=$stage/share/cmake/warren" "$tmp/upper-build/CMakeCache.txt" ||
  fail "find_package(warren) did not use the staged package config"
cmake --build "$tmp/upper-build" >"$tmp/build.log" 2>&1 ||
  fail "building plugins/upper out of tree failed:"$'\n'"$(cat "$tmp/build.log")"
plugin=$tmp/upper-build/upper.so
[[ -f $plugin ]] || fail "the out-of-tree build made no upper.so"
# Hidden visibility: the entry point is the only symbol the plugin exports.
exported=$(nm -D --defined-only "$plugin" | awk '$2 ~ /^[TDBVWRu]$/ {print $3}' | grep -v '^_' || true)
[[ $exported == warren_plugin_v1 ]] || fail "upper.so exports more than warren_plugin_v1:"$'\n'"$exported"

# warrend refuses a plugin, or a plugin folder, that group or others may
# write: set the modes rather than inherit them from the umask (002 is common).
mkdir -m 0755 "$tmp/plugins"
install -m 0755 "$plugin" "$tmp/plugins/"
write_config() {  # FILE MODE
  cat >"$1" <<YAML
plugins:
  dir: /nonexistent  # overridden by --plugin-dir
queues:
  - name: shout
    handler: upper
    options:
      mode: $2
      prefix: "> "
YAML
}
write_config "$tmp/good.yaml" lower
output=$("$warrend" --check --config "$tmp/good.yaml" --plugin-dir "$tmp/plugins" 2>&1) ||
  fail "warrend --check refuses the out-of-tree upper.so:"$'\n'"$output"
[[ $output == *"configuration OK"* ]] || fail "no 'configuration OK' from warrend --check: $output"
echo "warrend --check with the out-of-tree upper.so: OK"

write_config "$tmp/bad.yaml" sideways
status=0
output=$("$warrend" --check --config "$tmp/bad.yaml" --plugin-dir "$tmp/plugins" 2>&1) || status=$?
[[ $status == 78 ]] || fail "warrend --check with mode: sideways exited $status, expected 78: $output"
[[ $output == *"must be one of: upper, lower; got 'sideways'"* ]] ||
  fail "warrend --check does not relay upper's option error: $output"
echo "warrend --check refuses mode: sideways: OK"

# The template's install rule puts the plugin into that warren's plugin folder.
cmake --install "$tmp/upper-build" >"$tmp/install-upper.log" 2>&1 ||
  fail "cmake --install of the out-of-tree plugin failed:"$'\n'"$(cat "$tmp/install-upper.log")"
cmp -s "$plugin" "$stage/lib/warren/plugins/upper.so" ||
  fail "cmake --install of the plugin did not put upper.so into $stage/lib/warren/plugins"
echo "out-of-tree install into WARREN_PLUGIN_INSTALL_DIR: OK"

echo "== drop upper.so into a running warrend, add its queue, SIGHUP"
# A free port whose +20000 (the node's Erlang distribution port)
# is free too.
port=$(/usr/bin/python3 "$source_dir/tests/scripts/free_ports.py" 1) || fail "no free loopback port"
# Its own directory: the broker runs as the rabbitmq user, who cannot enter $tmp.
broker_dir=$(mktemp -d)
"$source_dir/scripts/rabbitmq-private" start "$broker_dir" "$port" >"$tmp/broker.log" 2>&1 ||
  fail "cannot start a private broker:"$'\n'"$(cat "$tmp/broker.log")"
url="amqp://guest:guest@127.0.0.1:$port/%2f"
mkdir -m 0755 "$tmp/live-plugins"
install -m 0755 "$stage/lib/warren/plugins/sum.so" "$tmp/live-plugins/"
live_config() {  # the queues, as YAML lines
  cat >"$tmp/live.next.yaml" <<YAML
broker:
  url: $url
plugins:
  dir: $tmp/live-plugins
metrics:
  enabled: false
queues:
$1
YAML
  mv "$tmp/live.next.yaml" "$tmp/live.yaml"  # replaced, as editors do
}
live_config "  - name: sdk_sum
    handler: sum"
: >"$tmp/warrend.log"  # exists before tail -f opens it, whenever warrend starts
"$stage/bin/warrend" --config "$tmp/live.yaml" >>"$tmp/warrend.log" 2>&1 &
warrend_pid=$!
# Waits for a line in warrend's log (blocking on tail, not polling).
await_log() {
  timeout 30 grep -m1 -qF "$1" <(tail -n +1 -f "$tmp/warrend.log") ||
    fail "warrend never logged '$1':"$'\n'"$(cat "$tmp/warrend.log")"
}
await_log "ready: "
[[ $("$stage/bin/warren-call" --broker "$url" sdk_sum 2,3) == 5 ]] || fail "sum did not answer"
# Installed as packages do: copied beside, then moved over.
install -m 0755 "$plugin" "$tmp/live-plugins/.upper.so.new"
mv "$tmp/live-plugins/.upper.so.new" "$tmp/live-plugins/upper.so"
live_config "  - name: sdk_sum
    handler: sum
  - name: sdk_shout
    handler: upper
    options:
      prefix: \"> \""
kill -HUP "$warrend_pid"
await_log "reloaded: 1 added, 0 removed, 0 replaced, 1 unchanged"
# The new queue's consumer declares it once connected: call after that.
await_log "consuming 'sdk_shout'"
answer=$("$stage/bin/warren-call" --broker "$url" --timeout 10 sdk_shout "hello") ||
  fail "the reloaded upper plugin did not answer:"$'\n'"$(cat "$tmp/warrend.log")"
[[ $answer == "> HELLO" ]] || fail "upper answered '$answer', expected '> HELLO'"

echo "== libwarren-client from $stage: find_package(warren) and pkg-config"
# Exactly the API of <warren/client.hpp>, in the version node WARREN_CLIENT_0.
library=$stage/lib/$multiarch/libwarren-client.so.0
[[ $(objdump -p "$library" | awk '$1 == "SONAME" {print $2}') == libwarren-client.so.0 ]] ||
  fail "the library's SONAME is not libwarren-client.so.0"
exported=$(nm -D --defined-only "$library" | awk '{print $3}' | sort)
unversioned=$(grep -v '@@WARREN_CLIENT_0$' <<<"$exported" | grep -vx WARREN_CLIENT_0 || true)
[[ -z $unversioned ]] || fail "symbols outside WARREN_CLIENT_0:"$'\n'"$unversioned"
api=$(nm -D --defined-only -C "$library" | awk '{$1 = $2 = ""; print}' | sed -E 's/^ +//; s/\(.*//; s/\[abi:cxx11\]//; s/@@.*//' | LC_ALL=C sort -u | tr '\n' ';')
expected_api="WARREN_CLIENT_0;typeinfo for warren::CallError;typeinfo name for warren::CallError;"
expected_api+="vtable for warren::CallError;warren::Client::Client;warren::Client::call;"
expected_api+="warren::Client::callAsync;warren::Client::stats;warren::Client::~Client;"
expected_api+="warren::callStatusName;warren::defaultBrokerUrl;warren::defaultPasswordFile;"
[[ $api == "$expected_api" ]] ||
  fail "libwarren-client exports: $api"
mkdir "$tmp/caller"
cat >"$tmp/caller/caller.cpp" <<'CPP'
// caller URL QUEUE BODY: one call; the reply on stdout, or the failure.
#include <warren/client.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  warren::ClientOptions options;
  options.broker_url = argv[1];
  warren::Client client(options);
  try {
    std::cout << client.call(argv[2], argv[3]).body << "\n";
  } catch (const warren::CallError& e) {  // thrown inside the library
    std::cout << warren::callStatusName(e.status()) << " " << e.errorCode() << "\n";
    return 1;
  }
}
CPP
cat >"$tmp/caller/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(caller CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(warren 0.1 REQUIRED)
add_executable(caller caller.cpp)
target_link_libraries(caller PRIVATE warren::client)
CMAKE
cmake -S "$tmp/caller" -B "$tmp/caller-build" -DCMAKE_PREFIX_PATH="$stage" >"$tmp/caller.log" 2>&1 &&
  cmake --build "$tmp/caller-build" >>"$tmp/caller.log" 2>&1 ||
  fail "building the caller with find_package(warren) failed:"$'\n'"$(cat "$tmp/caller.log")"
PKG_CONFIG_PATH=$stage/lib/$multiarch/pkgconfig
export PKG_CONFIG_PATH
g++ -std=c++17 -o "$tmp/caller-pc" "$tmp/caller/caller.cpp" $(pkg-config --cflags --libs warren-client) \
  >"$tmp/caller-pc.log" 2>&1 || fail "building the caller with pkg-config failed:"$'\n'"$(cat "$tmp/caller-pc.log")"
for caller in "$tmp/caller-build/caller" "$tmp/caller-pc"; do
  # (ldd's output is kept first: `ldd | grep -q` under pipefail fails
  # whenever grep stops reading before ldd is done writing.)
  libraries=$(LD_LIBRARY_PATH=$stage/lib/$multiarch ldd "$caller")
  grep -qF "libwarren-client.so.0 => $stage/lib/$multiarch/" <<<"$libraries" ||
    fail "$caller does not load the staged libwarren-client.so.0:"$'\n'"$libraries"
  reply=$(LD_LIBRARY_PATH=$stage/lib/$multiarch "$caller" "$url" sdk_sum 40,2) ||
    fail "$caller: $reply"
  [[ $reply == 42 ]] || fail "$caller replyed '$reply'"
  status=0
  reply=$(LD_LIBRARY_PATH=$stage/lib/$multiarch "$caller" "$url" sdk_sum 1,x) || status=$?
  [[ $status == 1 && $reply == "remote_error invalid_argument" ]] ||
    fail "$caller on 1,x: exit $status, '$reply'"
done
echo "callers built with find_package(warren) and pkg-config: 42, and the CallError of 1,x caught: OK"

kill -TERM "$warrend_pid"
wait "$warrend_pid" || fail "warrend did not exit 0 after SIGTERM:"$'\n'"$(cat "$tmp/warrend.log")"
warrend_pid=
echo "out-of-tree upper.so dropped in, reloaded, answered '$answer': OK"
