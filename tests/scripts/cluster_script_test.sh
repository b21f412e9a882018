#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/rabbitmq-cluster end to end: a 3-node cluster keeps a quorum queue's
# messages when the node holding the queue's leader is killed, and takes that
# node back as a running member on restart.
#
#   cluster_script_test.sh SOURCE_DIR
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: cluster_script_test.sh SOURCE_DIR" >&2; exit 2; }
cluster="$1/scripts/rabbitmq-cluster"
queue=warren-cluster-test
messages=10

fail() { echo "cluster_script_test: FAIL: $*" >&2; exit 1; }
step() { echo "cluster_script_test: $*"; }

dir=$(mktemp -d /tmp/warren-cluster-test-XXXXXX)
cleanup() {
  local status=$?
  if [[ -f $dir/port ]]; then "$cluster" stop "$dir" || status=1; fi
  if ((status == 0)); then
    rm -rf "$dir"
  else
    echo "cluster_script_test: node logs kept in $dir/node{1,2,3}/log" >&2
  fi
  exit $status
}
trap cleanup EXIT

# PORT such that PORT..PORT+2 and their distribution ports (+20000) are free.
read -r port _ < <(/usr/bin/python3 "$(dirname "$0")/free_ports.py" 3 --consecutive) || true
[[ -n $port ]] || fail "found no free range of 3 loopback ports"

step "starting a cluster on ports $port..$((port + 2)) in $dir"
started=$SECONDS
"$cluster" start "$dir" "$port" || fail "rabbitmq-cluster start failed"
step "cluster started in $((SECONDS - started)) s"

step "declaring quorum queue $queue on node 1, publishing $messages persistent messages with confirms"
timeout 60 /usr/bin/python3 - "$port" "$queue" "$messages" <<'PY' || fail "declaring or publishing on node 1 failed"
import sys
import pika
port, queue, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
parameters = pika.ConnectionParameters(host="127.0.0.1", port=port, socket_timeout=10,
                                       blocked_connection_timeout=30)
with pika.BlockingConnection(parameters) as connection:
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    for i in range(count):
        # With confirms, basic_publish raises when the broker nacks or cannot route.
        channel.basic_publish("", queue, f"message {i}".encode(),
                              pika.BasicProperties(delivery_mode=2), mandatory=True)
PY

leader=$("$cluster" ctl "$dir" 1 list_queues -q --no-table-headers name leader |
  awk -v q="$queue" '$1 == q { print $2 }')
[[ $leader =~ ^warren([0-9]+)@localhost$ ]] || fail "no leader for $queue in list_queues (got '$leader')"
killed=$((BASH_REMATCH[1] - port + 1))
((killed >= 1 && killed <= 3)) || fail "leader $leader is not a node of this cluster"
survivor=$((killed % 3 + 1))

step "killing node $killed ($leader), the leader of $queue"
"$cluster" kill "$dir" "$killed" || fail "rabbitmq-cluster kill $killed failed"

# The survivors elect a new leader first: poll, bounded.
deadline=$((SECONDS + 60))
until ready=$("$cluster" ctl "$dir" "$survivor" list_queues -q --no-table-headers name messages_ready 2>/dev/null |
  awk -v q="$queue" '$1 == q { print $2 }') && [[ $ready == "$messages" ]]; do
  ((SECONDS < deadline)) ||
    fail "node $survivor reports '${ready:-nothing}' messages ready in $queue 60 s after the leader died, not $messages"
  sleep 0.5
done
step "node $survivor still reports $messages messages ready"

step "restarting node $killed"
"$cluster" restart "$dir" "$killed" || fail "rabbitmq-cluster restart $killed failed"
members=$("$cluster" status "$dir") || fail "rabbitmq-cluster status failed"
for k in 1 2 3; do
  grep -qxF "warren$((port + k - 1))@localhost" <<<"$members" ||
    fail "node $k is not a running member after the restart; status: $(echo "$members" | tr '\n' ' ')"
done
step "all 3 nodes are running members again"
step "PASS"
