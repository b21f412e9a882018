#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Free loopback ports for the script tests, printed on one line.

    free_ports.py BROKERS [PLAIN] [--consecutive]

BROKERS ports for RabbitMQ nodes: each with its distribution port (+20000)
free too, neither among the CLI's own distribution ports (35672..35682);
with --consecutive they are PORT, PORT+1, ... (a cluster's nodes). Then
PLAIN more ports that only need to be free. Exits 1 when none are found.
"""
import random
import socket
import sys


def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def usable(port, broker):
    if not free(port) or 35672 <= port <= 35682:
        return False
    return not broker or (free(port + 20000) and not 35672 <= port + 20000 <= 35682)


def main():
    arguments = [a for a in sys.argv[1:] if a != "--consecutive"]
    consecutive = "--consecutive" in sys.argv[1:]
    brokers, plain = int(arguments[0]), int(arguments[1]) if len(arguments) > 1 else 0
    for _ in range(1000):
        if consecutive:
            base = random.randint(20000, 25000)
            chosen = list(range(base, base + brokers))
        else:
            chosen = random.sample(range(20000, 25000), brokers)
        chosen += random.sample(range(25001, 30000), plain)
        if len(set(chosen)) == len(chosen) and all(
                usable(port, index < brokers) for index, port in enumerate(chosen)):
            print(*chosen)
            return 0
    print("free_ports.py: no free loopback ports found", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
