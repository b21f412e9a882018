# SPDX-License-Identifier: Apache-2.0
"""What bench/run and bench/scale share: a private broker, /proc readings,
stopping a process. Imported by those scripts (they live beside it)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TICK = os.sysconf("SC_CLK_TCK")


def log(message):
    print("bench: " + message, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu_seconds(pid):
    """User + system CPU time of a process and of its descendants so far: the
    live ones (a warrend's worker processes) and those reaped (a restarted
    worker). For a process without children, cpu_seconds()."""
    children = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        fields = stats.get(current)
        if fields is None:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
        pending.extend(children.get(current, []))
    return total / TICK


def proc_status(pid, key):
    """A field of /proc/PID/status as an integer (VmRSS in kB, Threads)."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def children_cpu():
    usage = os.times()
    return usage.children_user + usage.children_system


def free_port():
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_broker_port():
    """A free port for a private broker: it also takes port + 20000 for Erlang
    distribution (scripts/rabbitmq-private), so keep both below 65536."""
    for _ in range(100):
        port = free_port()
        if port <= 45535:
            return port
        port = 20000 + port % 20000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for a private broker")


class Broker:
    """A private RabbitMQ node on 127.0.0.1:port, in a directory of its own."""

    def __init__(self, port):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="warren-bench-broker-")
        subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq-private"), "start", self.dir,
                        str(port)], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "node.pid")) as f:
            self.pid = int(f.read().strip())

    def ctl(self, *arguments, check=True):
        return subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq-private"), "ctl",
                               self.dir] + list(arguments), capture_output=True, text=True,
                              check=check).stdout

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "rabbitmq-private"), "stop", self.dir],
                       check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def stop(process, timeout=30):
    """SIGTERM, then SIGKILL after `timeout` s; returns the exit code."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
