# SPDX-License-Identifier: Apache-2.0
"""Calls warrend (or any server of its protocol) from Python, with pika.

    from warren_rpc import RpcClient, RpcError, RpcTimeout

    with RpcClient("amqp://guest:guest@localhost:5672/%2f") as client:
        print(client.call("sum", "3,4"))                  # b'7'
        try:
            client.call("sum", "1,x")
        except RpcError as error:
            print(error.code, error.message)             # invalid_argument ...

One connection, one exclusive reply queue for all of its calls, a fresh
correlation id per call. Each call carries its deadline twice: `expiration`
(the broker drops a request nobody waits for any more) and the header
`x-warren-deadline` (warrend answers `deadline_exceeded` instead of running
it). An error reply is told from a result by its `x-warren-error-code`
header, never by its body (docs/protocol.md).

pika's BlockingConnection belongs to one thread: use one RpcClient per
thread, or call_many() to have several calls in flight from one.

Needs Debian's python3-pika (apt-get install python3-pika); nothing else.
"""

import time
import uuid

import pika

__all__ = ["RpcClient", "RpcError", "RpcTimeout", "NoSuchQueue"]


class RpcError(Exception):
    """The server answered with an error reply: `code` and `message`."""

    def __init__(self, code, message):
        super().__init__(f"error reply {code}: {message}")
        self.code = code
        self.message = message


class RpcTimeout(Exception):
    """No reply within the call's timeout."""


class NoSuchQueue(Exception):
    """The broker returned the request: no queue of that name."""


def _text(value):
    """A header value as text (pika gives bytes or str)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RpcClient:
    def __init__(self, url="amqp://guest:guest@localhost:5672/%2f"):
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        declared = self._channel.queue_declare(queue="", exclusive=True, auto_delete=True)
        self._reply_queue = declared.method.queue
        self._channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
        self._channel.add_on_return_callback(self._on_return)
        self._waiting = set()  # correlation ids of the calls in flight
        self._answers = {}  # correlation id -> bytes, or the exception to raise

    def close(self):
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, queue, body, timeout=5.0, content_type=None):
        """One call: the reply's body (bytes); raises RpcError, RpcTimeout,
        NoSuchQueue."""
        outcome = self.call_many(queue, [body], timeout, content_type)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def call_many(self, queue, bodies, timeout=5.0, content_type=None):
        """Publishes every body at once, then waits for their replies: a list
        in the order of `bodies`, each the reply's body (bytes) or the
        exception of that call (RpcError, RpcTimeout, NoSuchQueue)."""
        deadline = time.time() + timeout
        ids = [self._publish(queue, body, deadline, timeout, content_type) for body in bodies]
        while self._waiting.intersection(ids):
            remaining = deadline - time.time()
            if remaining <= 0:
                break
            self._connection.process_data_events(time_limit=remaining)
        outcomes = []
        for correlation_id in ids:
            self._waiting.discard(correlation_id)  # a late reply is dropped
            if correlation_id in self._answers:
                outcomes.append(self._answers.pop(correlation_id))
            else:
                outcomes.append(RpcTimeout(f"no reply within {timeout:g} s"))
        return outcomes

    def _publish(self, queue, body, deadline, timeout, content_type):
        correlation_id = str(uuid.uuid4())
        properties = pika.BasicProperties(
            reply_to=self._reply_queue,
            correlation_id=correlation_id,
            content_type=content_type,
            expiration=str(max(1, int(timeout * 1000))),
            headers={"x-warren-deadline": int(deadline * 1000)},
        )
        self._waiting.add(correlation_id)
        # mandatory: a request to a missing queue comes back (_on_return)
        # instead of vanishing until the timeout.
        self._channel.basic_publish("", queue, body, properties, mandatory=True)
        return correlation_id

    def _on_reply(self, _channel, _method, properties, body):
        correlation_id = properties.correlation_id
        if correlation_id not in self._waiting:
            return  # a reply to a call that already gave up
        self._waiting.discard(correlation_id)
        headers = properties.headers or {}
        if "x-warren-error-code" in headers:
            self._answers[correlation_id] = RpcError(
                _text(headers["x-warren-error-code"]),
                _text(headers.get("x-warren-error-message", "")))
        else:
            self._answers[correlation_id] = body

    def _on_return(self, _channel, method, properties, _body):
        correlation_id = properties.correlation_id
        if correlation_id in self._waiting:
            self._waiting.discard(correlation_id)
            self._answers[correlation_id] = NoSuchQueue(
                f"no queue '{method.routing_key}' on the broker "
                f"({method.reply_code} {method.reply_text})")
