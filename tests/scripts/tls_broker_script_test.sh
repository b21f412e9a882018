#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/rabbitmq-private start --tls end to end, checked with openssl s_client:
# the broker's certificate verifies against the test CA for the name localhost,
# not against another CA, not for the address 127.0.0.1; a client certificate
# is accepted; and the broker comes back with TLS after a kill and a plain
# `start DIR PORT`.
#
#   tls_broker_script_test.sh SOURCE_DIR
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: tls_broker_script_test.sh SOURCE_DIR" >&2; exit 2; }
private="$1/scripts/rabbitmq-private"

fail() { echo "tls_broker_script_test: FAIL: $*" >&2; exit 1; }
step() { echo "tls_broker_script_test: $*"; }

dir=$(mktemp -d /tmp/warren-tls-test-XXXXXX)
cleanup() {
  local status=$?
  if [[ -f $dir/port ]]; then "$private" stop "$dir" || status=1; fi
  if ((status == 0)); then
    rm -rf "$dir"
  else
    echo "tls_broker_script_test: broker logs kept in $dir/log" >&2
  fi
  exit $status
}
trap cleanup EXIT

# PORT (and PORT + 20000 for distribution) and TLSPORT, free on loopback.
read -r port tls_port < <(/usr/bin/python3 "$(dirname "$0")/free_ports.py" 1 1) || true
[[ -n ${tls_port:-} ]] || fail "found no free loopback ports"
certs=$dir/tls

# One TLS handshake against the broker; extra arguments go to s_client.
# -verify_return_error makes a failed verification fail the handshake.
handshake() {
  timeout 20 openssl s_client -connect "127.0.0.1:$tls_port" -verify_return_error -brief "$@" \
    </dev/null >"$dir/s_client.log" 2>&1
}
expect_ok() {
  local what=$1
  shift
  handshake "$@" || fail "$what: the handshake failed: $(cat "$dir/s_client.log")"
  grep -q "Verification: OK" "$dir/s_client.log" ||
    fail "$what: the handshake did not verify: $(cat "$dir/s_client.log")"
  step "ok: $what"
}
expect_refused() {
  local what=$1 reason=$2
  shift 2
  ! handshake "$@" || fail "$what: the handshake succeeded: $(cat "$dir/s_client.log")"
  grep -q "$reason" "$dir/s_client.log" ||
    fail "$what: the handshake failed, but not with '$reason': $(cat "$dir/s_client.log")"
  step "ok: $what"
}
check_tls() {
  expect_ok "the test CA verifies the broker for the name localhost" \
    -CAfile "$certs/ca.pem" -verify_hostname localhost
  expect_refused "another CA does not verify the broker" "self-signed certificate in certificate chain" \
    -CAfile "$certs/other-ca.pem" -verify_hostname localhost
  expect_refused "the broker's certificate is not for the address 127.0.0.1" "IP address mismatch" \
    -CAfile "$certs/ca.pem" -verify_ip 127.0.0.1
  expect_ok "the broker accepts a handshake with the client certificate" \
    -CAfile "$certs/ca.pem" -verify_hostname localhost -cert "$certs/client.pem" -key "$certs/client.key"
  # s_client alone does not show that the broker took the certificate (with
  # TLS 1.3 the client's certificate comes after the handshake): log in.
  login "guest/guest over TLS (PLAIN)" plain
  login "the client certificate over TLS (EXTERNAL, user warren-client)" external
}

# Opens an AMQP connection and a channel over TLS with PLAIN (guest) or
# EXTERNAL (client.pem) authentication.
login() {
  local what=$1 mechanism=$2
  timeout 30 /usr/bin/python3 - "$tls_port" "$certs" "$mechanism" >"$dir/login.log" 2>&1 <<'PY' ||
import ssl, sys
import pika
port, certs, mechanism = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile=f"{certs}/ca.pem")
if mechanism == "external":
    context.load_cert_chain(f"{certs}/client.pem", f"{certs}/client.key")
    credentials = pika.credentials.ExternalCredentials()
else:
    credentials = pika.PlainCredentials("guest", "guest")
parameters = pika.ConnectionParameters(host="localhost", port=port, credentials=credentials,
                                       ssl_options=pika.SSLOptions(context, "localhost"),
                                       socket_timeout=10, blocked_connection_timeout=20)
with pika.BlockingConnection(parameters) as connection:
    connection.channel().close()
PY
    fail "$what: login failed: $(cat "$dir/login.log")"
  step "ok: $what"
}

step "starting a TLS broker on ports $port (AMQP) and $tls_port (AMQPS) in $dir"
"$private" start "$dir" "$port" --tls "$tls_port" >/dev/null || fail "rabbitmq-private start --tls failed"
for file in ca.pem ca.key server.pem server.key client.pem client.key other-ca.pem other-ca.key; do
  [[ -s $certs/$file ]] || fail "make-test-certs did not write $certs/$file"
done
check_tls

step "killing the broker and starting it again without --tls"
"$private" kill "$dir" || fail "rabbitmq-private kill failed"
! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$tls_port" 2>/dev/null ||
  fail "port $tls_port still accepts connections after the kill"
"$private" start "$dir" "$port" >/dev/null || fail "rabbitmq-private start (restart) failed"
expect_ok "the restarted broker speaks TLS again" -CAfile "$certs/ca.pem" -verify_hostname localhost
step "PASS"
