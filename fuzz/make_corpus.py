#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus in fuzz/corpus/<target>/ (small files, committed).

Frame inputs use the record format of fuzz/frame_stream.h; the AMQP
encodings follow the AMQP 0-9-1 specification (shortstr, field tables,
basic properties in flag order)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def shortstr(text):
    data = text.encode()
    return bytes([len(data)]) + data


def longstr(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data


def table(entries):
    body = b""
    for key, kind, value in entries:
        body += shortstr(key) + kind.encode()
        if kind == "S":
            body += longstr(value)
        elif kind == "I":
            body += struct.pack(">i", value)
        elif kind == "l":
            body += struct.pack(">q", value)
        elif kind == "t":
            body += bytes([1 if value else 0])
        elif kind == "F":
            body += table(value)
    return struct.pack(">I", len(body)) + body


def properties(content_type=None, headers=None, correlation_id=None, reply_to=None):
    flags = 0
    fields = b""
    if content_type is not None:
        flags |= 0x8000
        fields += shortstr(content_type)
    if headers is not None:
        flags |= 0x2000
        fields += table(headers)
    if correlation_id is not None:
        flags |= 0x0400
        fields += shortstr(correlation_id)
    if reply_to is not None:
        flags |= 0x0200
        fields += shortstr(reply_to)
    return struct.pack(">H", flags) + fields


def record(op, channel, payload):
    return bytes([op, channel]) + struct.pack("<H", len(payload)) + payload


def deliver(channel, tag=1, redelivered=False):
    args = shortstr("ctag") + struct.pack(">Q", tag) + bytes([redelivered]) + shortstr("") + shortstr("sum")
    return record(0, channel, args)


def returned(channel):
    args = struct.pack(">H", 312) + shortstr("NO_ROUTE") + shortstr("") + shortstr("nowhere")
    return record(1, channel, args)


def header(channel, body_size, props):
    return record(2, channel, struct.pack("<Q", body_size) + props)


def body(channel, data):
    return record(3, channel, data)


def frames():
    limit = bytes([64])  # 64 * 16 = 1024 bytes kept
    reply = properties("text/plain", [], "r1", "amq.rabbitmq.reply-to")
    error = properties(None, [("x-warren-error-code", "S", "bad_input"),
                              ("x-warren-error-message", "S", "not a number")], "r2")
    typed = properties("application/json", [("s", "S", "x"), ("i", "I", -7), ("l", "l", 1 << 40),
                                            ("b", "t", True), ("nested", "F", [("k", "S", "v")])],
                       "r3", "replies")
    return {
        "deliver_one_body": limit + deliver(1) + header(1, 3, reply) + body(1, b"1,2"),
        "deliver_two_bodies": limit + deliver(1) + header(1, 6, reply) + body(1, b"abc") + body(1, b"def"),
        "deliver_empty_body": limit + deliver(2) + header(2, 0, reply),
        "error_reply": limit + deliver(1) + header(1, 4, error) + body(1, b"oops"),
        "typed_headers": limit + deliver(1) + header(1, 2, typed) + body(1, b"{}"),
        "too_large": bytes([0]) + deliver(1) + header(1, 5, reply) + body(1, b"hello"),
        "returned": limit + returned(1) + header(1, 2, reply) + body(1, b"hi"),
        "interleaved_channels": limit + deliver(1) + deliver(2) + header(2, 1, reply) + header(1, 1, error)
        + body(1, b"a") + body(2, b"b"),
        "body_before_header": limit + deliver(1) + body(1, b"x") + deliver(1) + header(1, 1, reply) + body(1, b"y"),
        "heartbeat_inside": limit + deliver(1) + record(4, 1, b"") + deliver(1) + header(1, 0, reply),
    }


CORPORA = {
    "delivery_assembler_fuzz": frames,
    "client_reply_fuzz": frames,
    "duration_fuzz": lambda: {n: v.encode() for n, v in {
        "ms": "250ms", "s": "10s", "fraction": "1.5s", "m": "2m", "h": "1h", "bare": "5", "neg": "-1s",
        "huge": "99999999999999999999h", "space": " 1s"}.items()},
    "broker_url_fuzz": lambda: {n: v.encode() for n, v in {
        "full": "amqp://user:secret@broker.example:5673/prod",
        "default_vhost": "amqp://user:secret@localhost/%2f",
        "no_password": "amqp://user@localhost",
        "no_auth": "amqp://localhost:5672",
        "ipv6": "amqp://u:p4ss@[::1]:5672/v",
        "encoded_password": "amqp://u:p%40ss@host/v",
        "at_in_path": "amqp://u:pw@host/v@x",
        "tls": "amqps://u:pw@host",
        "query": "amqp://u:pw@host?heartbeat=5"}.items()},
    "config_fuzz": lambda: {
        "minimal": b"broker:\n  url: amqp://guest:guest@127.0.0.1:5672/%2f\nplugins:\n  dir: plugins\n"
                   b"queues:\n  - name: sum\n    handler: sum\n",
        "shipped": open(os.path.join(HERE, "..", "config", "warren.yaml"), "rb").read(),
        "bad_duration": b"broker:\n  url: amqp://localhost\n  heartbeat: 10 parsecs\n"
                        b"queues:\n  - name: q\n    handler: p\n",
        "not_a_map": b"- 1\n- 2\n",
        "anchors": b"a: &x {b: *x}\n",
        "stray_comma": b"- 2\n,",
        "tab_indent": b"plugins:\n\tdir: p\n",
    },
}


def main():
    for target, make in CORPORA.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in make().items():
            with open(os.path.join(folder, name), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
