#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# warrend under a real Prometheus (Debian's prometheus package), on loopback:
#   1. `promtool check metrics` has nothing to say about its /metrics;
#   2. every metric family the Grafana dashboard and the alert rules of
#      monitoring/ query is one warrend exports (checked against the scrape);
#   3. `promtool check rules` and `promtool test rules` pass;
#   4. a Prometheus server scraping warrend every second, with the rules
#      loaded, answers rate(...) and histogram_quantile(...) over its HTTP API
#      with calls made in between, and warren_ready is 1.
#
#   prometheus_script_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: prometheus_script_test.sh SOURCE_DIR BUILD_DIR" >&2; exit 2; }
source_dir=$(realpath "$1")
build=$(realpath "$2")
monitoring=$source_dir/monitoring

fail() { echo "prometheus_script_test: FAIL: $*" >&2; exit 1; }
step() { echo "prometheus_script_test: $*"; }
for tool in promtool prometheus; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps installs prometheus)"
done

dir=$(mktemp -d /tmp/warren-prometheus-test-XXXXXX)
chmod 755 "$dir"  # the broker runs as the rabbitmq user
warrend_pid="" prometheus_pid=""
cleanup() {
  local status=$?
  [[ -n $prometheus_pid ]] && kill "$prometheus_pid" 2>/dev/null && wait "$prometheus_pid" 2>/dev/null
  [[ -n $warrend_pid ]] && kill "$warrend_pid" 2>/dev/null && wait "$warrend_pid" 2>/dev/null
  if [[ -f $dir/broker/port ]]; then "$source_dir/scripts/rabbitmq-private" stop "$dir/broker" || status=1; fi
  if ((status == 0)); then
    rm -rf "$dir"
  else
    echo "prometheus_script_test: logs kept in $dir" >&2
  fi
  exit $status
}
trap cleanup EXIT

# Three free loopback ports: the broker's (its distribution port +20000
# free too), warrend's metrics, Prometheus's web.
read -r broker_port metrics_port web_port < <(/usr/bin/python3 "$(dirname "$0")/free_ports.py" 1 2) ||
  fail "no free loopback ports"

# GET URL -> body on stdout; fails on a non-2xx status.
get() { /usr/bin/python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
# Waits (at most 60 s) until `get URL` succeeds.
await_url() {
  local deadline=$((SECONDS + 60))
  until get "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$1 did not answer within 60 s"
    sleep 0.2
  done
}
# An instant PromQL query -> the first result's value, or nothing.
query() {
  get "http://127.0.0.1:$web_port/api/v1/query?query=$(/usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")" |
    /usr/bin/python3 -c '
import json, sys
answer = json.load(sys.stdin)
assert answer["status"] == "success", answer
result = answer["data"]["result"]
if result:
    print(result[0]["value"][1])'
}

step "broker on 127.0.0.1:$broker_port"
mkdir -m 755 "$dir/broker"
"$source_dir/scripts/rabbitmq-private" start "$dir/broker" "$broker_port" >/dev/null

cat >"$dir/warren.yaml" <<YAML
broker:
  url: amqp://guest:guest@127.0.0.1:$broker_port/%2f
plugins:
  dir: $build/plugins
metrics:
  listen: 127.0.0.1:$metrics_port
queues:
  - name: sum
    handler: sum
    consumers: 2
YAML
"$build/daemon/warrend" --config "$dir/warren.yaml" 2>"$dir/warrend.log" &
warrend_pid=$!
await_url "http://127.0.0.1:$metrics_port/ready"
step "warrend ready, metrics on 127.0.0.1:$metrics_port"

# 1. promtool check metrics: silence is the pass.
"$build/client/warren-call" --broker "amqp://guest:guest@127.0.0.1:$broker_port/%2f" sum 1,2 >/dev/null
get "http://127.0.0.1:$metrics_port/metrics" >"$dir/metrics.txt"
lint=$(promtool check metrics <"$dir/metrics.txt" 2>&1) || fail "promtool check metrics failed: $lint"
[[ -z $lint ]] || fail "promtool check metrics reports:"$'\n'"$lint"
step "promtool check metrics: nothing to report ($(grep -c '^# TYPE' "$dir/metrics.txt") families)"

# 2. Every family the dashboard and the rules query is exported.
/usr/bin/python3 - "$dir/metrics.txt" "$monitoring/warren-dashboard.json" "$monitoring/warren-alerts.yml" <<'PY' ||
import json, re, sys
exported = {line.split()[2] for line in open(sys.argv[1]) if line.startswith("# TYPE ")}
exported.add("up")  # Prometheus's own, per target
def families(expr):
    names = set()
    for name in re.findall(r"\b((?:warren|process)_[a-z0-9_]+|up)\b", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in exported:
                name = name[: -len(suffix)]
        names.add(name)
    return names
dashboard = json.load(open(sys.argv[2]))
queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
queries += [variable["definition"] for variable in dashboard["templating"]["list"]
            if "definition" in variable]
used = set().union(*(families(query) for query in queries))
used |= families(open(sys.argv[3]).read())  # every rule's expr, one- or multi-line
missing = sorted(used - exported)
if missing:
    sys.exit("queried but not exported: " + ", ".join(missing))
print("prometheus_script_test: the dashboard (%d queries) and the rules use %d families, "
      "all exported" % (len(queries), len(used)))
PY
  fail "the dashboard or the rules query families warrend does not export"

# 3. The rules, checked and unit-tested.
promtool check rules "$monitoring/warren-alerts.yml" >/dev/null || fail "promtool check rules"
(cd "$monitoring" && promtool test rules warren-alerts.test.yml) >"$dir/rules-test.log" 2>&1 ||
  fail "promtool test rules:"$'\n'"$(cat "$dir/rules-test.log")"
step "promtool check rules, test rules: SUCCESS"

# 4. A Prometheus server scraping warrend every second.
cp "$monitoring/warren-alerts.yml" "$dir/"
cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [warren-alerts.yml]
scrape_configs:
  - job_name: warren
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$web_port" --log.level=warn >"$dir/prometheus.log" 2>&1 &
prometheus_pid=$!
await_url "http://127.0.0.1:$web_port/-/ready"
# Bounded polls: wait for a value that the next scrape brings.
await_query() {  # EXPR PYTHON-CONDITION-ON-v DESCRIPTION
  local deadline=$((SECONDS + 60)) value
  while :; do
    value=$(query "$1")
    if [[ -n $value ]] && /usr/bin/python3 -c "import sys; v = float(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$value"; then
      echo "$value"
      return
    fi
    ((SECONDS < deadline)) || fail "$3: '$1' = '${value:-no result}' after 60 s"
    sleep 0.5
  done
}
await_query 'up{job="warren"}' 'v == 1' "the first scrape" >/dev/null
before=$(query 'sum(warren_requests_received_total{job="warren"})')
step "Prometheus on 127.0.0.1:$web_port scrapes warrend; $before request(s) so far"

# Calls between scrapes: 5 rounds of 200, each round once the previous
# one has been scraped.
bodies=()
for i in $(seq 200); do bodies+=("$i,$i"); done
for round in 1 2 3 4 5; do
  "$build/client/warren-call" --broker "amqp://guest:guest@127.0.0.1:$broker_port/%2f" \
    --parallel 20 sum "${bodies[@]}" >/dev/null || fail "warren-call round $round"
  await_query 'sum(warren_requests_received_total{job="warren"})' "v >= $before + $round * 200" \
    "round $round scraped" >/dev/null
done

rate=$(await_query 'sum(rate(warren_requests_received_total{job="warren"}[30s]))' 'v > 0' "the request rate")
p99=$(await_query 'histogram_quantile(0.99, sum by (le) (rate(warren_handler_duration_seconds_bucket{job="warren"}[30s])))' \
  'v > 0 and v < 0.01' "the handler p99 of sum (microseconds)")
ok=$(await_query 'sum(rate(warren_requests_finished_total{job="warren",outcome="ok"}[30s]))' 'v > 0' "the ok rate")
await_query 'warren_ready{job="warren"}' 'v == 1' "warren_ready" >/dev/null
rules=$(get "http://127.0.0.1:$web_port/api/v1/rules" | /usr/bin/python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
rules = [rule for group in groups for rule in group["rules"]]
bad = [rule["name"] for rule in rules if rule["health"] != "ok" and rule.get("lastError")]
firing = [rule["name"] for rule in rules if rule.get("state") == "firing"]
if bad or firing:
    sys.exit("rules unhealthy: %s; firing: %s" % (bad, firing))
print(len(rules))') || fail "the alert rules on the server: $rules"
step "rate(received) = $rate/s, rate(ok) = $ok/s, handler p99 = ${p99}s, warren_ready = 1, $rules rules loaded, none firing"
step "OK"
