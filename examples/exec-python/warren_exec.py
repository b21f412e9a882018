# SPDX-License-Identifier: Apache-2.0
"""A warren exec handler in a few lines: serve(handler) answers warrend.

warrend (``handler: exec``) starts this program and speaks the framed
protocol of docs/exec-handlers.md over its stdin and stdout. serve() reads
each request, calls ``handler(request)`` and writes the reply:

    from warren_exec import HandlerError, Reply, serve

    def handle(request):
        if not request.body:
            raise HandlerError("invalid_argument", "empty body")
        return Reply(request.body.upper(), "text/plain")

    serve(handle)

The handler returns a Reply (or just bytes, str or None), or raises HandlerError
for an error reply; any other exception becomes an ``internal`` error reply
with its message, and its traceback goes to stderr, which warrend logs.
Python standard library only.
"""

import os
import re
import struct
import sys
import traceback

PROTOCOL = 1
MAX_HEADER_BYTES = 65536
# warrend never sends a body over the queue's max_body_bytes, itself at most
# 128 MiB: a larger length means the stream is not warren's frames.
MAX_BODY_BYTES = 128 * 1024 * 1024
_PREFIX = struct.Struct(">II")  # header length, body length: big-endian uint32


class HandlerError(Exception):
    """Raise to answer an error: code is invalid_argument, out_of_range,
    too_large, internal, unavailable or deadline_exceeded (warrend takes any
    other as internal)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Reply:
    def __init__(self, body=b"", content_type=""):
        self.body = body
        self.content_type = content_type


class Request:
    """One request. Strings are "" and numbers 0 when warrend sent no field.

    Text is decoded from UTF-8; a byte that is not UTF-8 (an AMQP string may
    hold any) is kept as a surrogate escape: value.encode("utf-8",
    "surrogateescape") gives the bytes back.
    """

    def __init__(self, fields, body):
        self.id = fields["id"]
        self.body = body
        self.queue = fields.get("queue", "")
        self.correlation_id = fields.get("correlation-id", "")
        self.content_type = fields.get("content-type", "")
        self.deadline_ms = int(fields.get("deadline-ms", "0"))  # ms since the Unix epoch
        self.delivery_count = int(fields.get("delivery-count", "0"))  # 0: first delivery
        # AMQP headers as text: strings, integers, booleans ("true", "false").
        self.headers = {name[len("header."):]: value for name, value in fields.items()
                        if name.startswith("header.")}


def _fail(what):
    # The stream cannot be trusted any more: say why and exit non-zero.
    # warrend answers the request in progress with handler_crashed.
    raise SystemExit(f"warren_exec: {what}; stopping")


def _read_exactly(stream, size, what, eof_ok=False):
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            if eof_ok and not data:
                return None
            _fail(f"stdin ended inside a frame ({what}: {len(data)} of {size} bytes)")
        data += chunk
    return data


def _read_frame(stream):
    """(fields, body) of the next frame, or None at EOF between frames."""
    prefix = _read_exactly(stream, _PREFIX.size, "length prefix", eof_ok=True)
    if prefix is None:
        return None
    header_size, body_size = _PREFIX.unpack(prefix)
    if header_size > MAX_HEADER_BYTES or body_size > MAX_BODY_BYTES:
        _fail(f"not a warren frame: lengths {header_size} and {body_size} "
              f"(prefix {prefix.hex(' ')})")
    header = _read_exactly(stream, header_size, "header")
    body = _read_exactly(stream, body_size, "body")
    # Values are the caller's bytes, not always UTF-8: never a reason to stop.
    text = header.decode("utf-8", "surrogateescape")
    if text and not text.endswith("\n"):
        _fail("a frame header does not end with a newline")
    fields = {}
    for line in text.split("\n")[:-1]:  # every line ends with "\n"
        name, sep, value = line.partition(": ")
        if not sep or not name:
            _fail(f"a frame header line is not 'name: value': {line[:60]!r}")
        fields.setdefault(name, value)  # the first of a repeated name counts
    return fields, body


def _one_line(text):
    return re.sub(r"[\r\n]+", " ", str(text))


def _frame(fields, body):
    header = "".join(f"{name}: {value}\n" for name, value in fields).encode(
        "utf-8", "surrogateescape")
    return _PREFIX.pack(len(header), len(body)) + header + bytes(body)


def _answer(handler, request):
    """The reply's fields and body: the handler's result, or its error."""
    try:
        reply = handler(request)
        if not isinstance(reply, Reply):
            reply = Reply(b"" if reply is None else reply)
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"a reply body is bytes or str, not {type(body).__name__}")
        fields = [("id", request.id), ("status", "ok")]
        if reply.content_type:
            if _one_line(reply.content_type) != reply.content_type:
                raise ValueError("the reply's content type holds a line break")
            fields.append(("content-type", reply.content_type))
        return fields, body
    except HandlerError as error:
        code, message = error.code, error.message
    except Exception as error:  # a bug in the handler: internal, traceback to the log
        traceback.print_exc()
        code, message = "internal", f"{type(error).__name__}: {error}"
    return [("id", request.id), ("status", "error"), ("error", _one_line(code)),
            ("message", _one_line(message))], b""


def serve(handler):
    """Answers requests until warrend closes stdin, then returns."""
    if os.environ.get("WARREN_PROTOCOL", str(PROTOCOL)) != str(PROTOCOL):
        _fail(f"warrend speaks protocol {os.environ['WARREN_PROTOCOL']}, this helper {PROTOCOL}")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must not corrupt the frames
    while True:
        frame = _read_frame(stdin)
        if frame is None:
            return  # EOF: warrend is done with this program
        fields, body = frame
        if not re.fullmatch(r"[0-9]+", fields.get("id", "")):
            _fail(f"a request's id is not a decimal integer: {fields.get('id', '(none)')!r}")
        stdout.write(_frame(*_answer(handler, Request(fields, body))))
        stdout.flush()
