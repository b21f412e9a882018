# SPDX-License-Identifier: Apache-2.0
"""The seed's sum as a warren exec handler: body "a,b" -> the decimal sum.

Replies exactly as warren's C++ plugin (plugins/sum/sum_parser.cpp) does,
byte for byte: the same text/plain body, the same error code and message
for each kind of bad input (no wording differs). Run by warrend from
warren.yaml beside this file; docs/exec-handlers.md has the protocol.
"""

import os
import sys

from warren_exec import HandlerError, Reply, serve

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXPECTED = "expected two integers 'a,b'"
SPACE = b" \t\n\r\v\f"  # what the plugin trims: the ASCII whitespace int() strips
QUOTE_LIMIT = 32  # bytes of a field quoted in a message


def quote(field):
    """The field between single quotes, printable: as the plugin's quote()."""
    out = []
    for byte in field[:QUOTE_LIMIT]:
        if byte in b"'\\":
            out.append("\\" + chr(byte))
        elif byte < 0x20 or byte >= 0x7F:
            out.append(f"\\x{byte:02x}")
        else:
            out.append(chr(byte))
    return "'" + "".join(out) + ("..." if len(field) > QUOTE_LIMIT else "") + "'"


def parse_field(field, which):
    """One trimmed field: an optional sign, then one or more ASCII digits."""
    if not field:
        raise HandlerError("invalid_argument", f"{which} field is empty: {EXPECTED}")
    digits = field[1:] if field[:1] in (b"+", b"-") else field
    if not digits.isdigit():  # bytes.isdigit(): ASCII digits only
        raise HandlerError("invalid_argument", f"{which} field is not an integer: {quote(field)}")
    # Over 19 significant digits is out of range whatever they are, signed or
    # not (and int() refuses more than 4300 digits).
    significant = digits.lstrip(b"0")
    value = int(significant or b"0") if len(significant) <= 19 else 2**64
    value = -value if field[:1] == b"-" else value
    if not INT64_MIN <= value <= INT64_MAX:
        raise HandlerError("out_of_range",
                           f"{which} field is out of the 64-bit integer range: {quote(field)}")
    return value


def handle(request):
    body = request.body
    if not body.strip(SPACE):
        raise HandlerError("invalid_argument", f"empty body: {EXPECTED}")
    fields = body.count(b",") + 1
    if fields != 2:
        raise HandlerError("invalid_argument",
                           "expected two comma-separated integers 'a,b', got "
                           f"{fields} {'field' if fields == 1 else 'fields'}")
    first, second = body.split(b",")
    a = parse_field(first.strip(SPACE), "first")
    b = parse_field(second.strip(SPACE), "second")
    if not INT64_MIN <= a + b <= INT64_MAX:
        raise HandlerError("out_of_range",
                           f"the sum {a} + {b} overflows the 64-bit integer range")
    return Reply(str(a + b).encode("ascii"), "text/plain")


if __name__ == "__main__":
    # stderr is the log: warrend writes each line under the queue's name.
    print(f"sum handler {os.getpid()} ready on queue '{os.environ.get('WARREN_QUEUE', '?')}'",
          file=sys.stderr)
    serve(handle)
