#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Calls the `sum` queue: every body at once, one line per answer.

    sum_client.py [--url URL] [--queue sum] [--timeout SECONDS] [BODY...]

Without BODY it makes the seed's demo: 10 calls at once with random
operands. Each answer is printed as `sum(x, y)=result`, in the order of the
bodies; each failure goes to stderr as `sum_client: BODY: WHAT`. The exit
codes are warren-call's (docs/client.md): 0 every call answered, 1 an error
reply, 3 a timeout, 4 no broker or the connection lost, 5 no such queue
(the highest wins).
"""

import argparse
import random
import sys

import pika.exceptions

from warren_rpc import NoSuchQueue, RpcClient, RpcError, RpcTimeout

EXIT_ERROR_REPLY, EXIT_TIMEOUT, EXIT_NO_BROKER, EXIT_NO_QUEUE = 1, 3, 4, 5


def main():
    parser = argparse.ArgumentParser(description="Calls warren's sum queue.")
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/%2f",
                        help="the broker (default: %(default)s)")
    parser.add_argument("--queue", default="sum", help="the queue (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for all the answers (default: %(default)s)")
    parser.add_argument("bodies", nargs="*", metavar="BODY", help="a request body, `a,b`")
    arguments = parser.parse_args()
    bodies = arguments.bodies or [
        f"{random.randint(0, 100)},{random.randint(0, 100)}" for _ in range(10)]

    try:
        with RpcClient(arguments.url) as client:
            outcomes = client.call_many(arguments.queue, bodies, arguments.timeout)
    except pika.exceptions.AMQPError as error:
        print(f"sum_client: {arguments.url}: cannot connect, or the connection was lost: "
              f"{error!r}", file=sys.stderr)
        return EXIT_NO_BROKER

    status = 0
    for body, outcome in zip(bodies, outcomes):
        if isinstance(outcome, bytes):
            operands = ", ".join(field.strip() for field in body.split(","))
            print(f"sum({operands})={outcome.decode()}")
            continue
        print(f"sum_client: {body}: {describe(outcome)}", file=sys.stderr)
        status = max(status, {RpcError: EXIT_ERROR_REPLY, RpcTimeout: EXIT_TIMEOUT,
                              NoSuchQueue: EXIT_NO_QUEUE}[type(outcome)])
    return status


def describe(failure):
    if isinstance(failure, RpcError):
        return f"error reply {failure.code}: {failure.message}"
    if isinstance(failure, RpcTimeout):
        return f"timeout: {failure}"
    return f"no such queue: {failure}"


if __name__ == "__main__":
    sys.exit(main())
