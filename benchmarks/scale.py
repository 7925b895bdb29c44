"""
SPEC 11's situations, measured with the shared harness's load generator
(issue 19): a reconnect storm beside a chatting room, a room of 10,000, and
the largest idle crowd the descriptor limit allows.

    python benchmarks/scale.py storm    [--clients 10000] [--room 100] [--rate 20]
    python benchmarks/scale.py bigroom  [--clients 10000] [--messages 3]
    python benchmarks/scale.py idle     [--clients 19000]

Each starts the real C{twistd -n chat} as the harness does (C{--rate 0 --db
:memory:}, no connection caps) pinned to CPU 0 and runs C{loadgen} (built
from C{--bench}/loadgen.c into /tmp/bench-build if missing) pinned to CPU 1,
on 127.0.0.1 only.

storm: a room of C{--room} clients chats (C{--senders} of them at C{--rate}
    messages a second each, C{-s 10 -R 20}: 19,800 deliveries a second)
    while C{--clients} other clients connect and log in all at once (each to
    a room of 10).  Prints the room's p50/p99/max delivery latency over the
    storm and how fast the storm logged in.  Target: p99 <= 50 ms.
bigroom: C{--clients} clients log in and join one room (C{-c N -r 1}), then
    one of them sends C{--messages} messages a second for 3 s.  Prints how
    long everyone took to log in and join (until the join notices were
    delivered and the room went quiet) and the p50/p99 of a message to the
    whole room.
idle: C{--clients} idle logged-in clients (rooms of 10): KiB of server RSS
    each, logins a second.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = "/tmp/bench-build"


def loadgen_binary(bench: str, prefix: str = "u") -> str:
    """
    The harness's loadgen; with another C{prefix}, a copy whose clients are
    named C{<prefix><i>} instead of C{u<i>} (two loadgens on one server,
    the storm's beside the room's, must not claim the same names).
    """
    src = os.path.join(bench, "loadgen.c")
    out = os.path.join(BUILD, "loadgen" if prefix == "u" else "loadgen-" + prefix)
    if not os.path.exists(out) or (os.path.exists(src)
                                   and os.path.getmtime(out) < os.path.getmtime(src)):
        os.makedirs(BUILD, exist_ok=True)
        if prefix != "u":
            with open(src) as f:
                text = f.read()
            renamed = text.replace('"u%d\\r\\n/join %s', '"' + prefix + '%d\\r\\n/join %s')
            if renamed == text:
                raise SystemExit("cannot rename loadgen's clients: its login line changed")
            src = out + ".c"
            with open(src, "w") as f:
                f.write(renamed)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", out, src, "-lm"], check=True)
    return out


def pinned(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """C{twistd -n chat} as the harness starts it, in a temporary directory."""

    def __init__(self, extra: list[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="chat-scale-")
        self.port = free_port()
        command = pinned("0") + [
            sys.executable, "-c",
            "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
            "-n", "--pidfile=", "chat", "--port", "tcp:%d:interface=127.0.0.1" % self.port,
            "--passcode", "x", "--rate", "0", "--db", ":memory:",
            "--max-per-ip", "100000", "--max-clients", "100000", *extra]
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.log_path = os.path.join(self.dir, "twistd.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, cwd=self.dir, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(self.log_path) as f:
                    raise SystemExit("twistd exited:\n" + f.read()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.3)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("twistd did not listen")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def loadgen(binary: str, server: Server, *args: str, timeout: float = 300) -> tuple[
        list[dict[str, object]], str]:
    """Run loadgen against C{server}; its JSON lines and its stderr."""
    argv = pinned("1") + [binary, "-p", str(server.port), "-a", "chat", "-P", "x",
                          "--pid", str(server.pid), *args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines or "error" in lines[-1]:
        raise SystemExit("loadgen failed: %s\n%s" % (lines[-1:] or p.stdout, p.stderr[-2000:]))
    return lines, p.stderr


def storm(a: argparse.Namespace, binary: str) -> None:
    server = Server([])
    try:
        results: dict[str, object] = {}

        def chat() -> None:
            results["room"] = loadgen(
                binary, server, "-m", "fanout", "-c", str(a.room), "-r", "1",
                "-s", str(a.senders), "-R", str(a.rate), "--room-prefix", "chat",
                "--warmup", "1", "-d", str(a.duration), "-D", "2",
                "--max-time", "120")[0][-1]

        room = threading.Thread(target=chat)
        room.start()
        time.sleep(1.5 + a.room / 2000)  # the room logged in and warmed up
        lines, _ = loadgen(loadgen_binary(a.bench, "v"), server, "-m", "idle",
                             "-c", str(a.clients),
                             "--room-size", "10", "-w", str(a.window),
                             "--hold", str(a.duration + 4),
                             "--room-prefix", "storm", "--login-timeout", "60", "--max-time", "90")
        room.join()
        r = lines[-1]
        q = results["room"]
        assert isinstance(q, dict)
        print("storm: %d logins in %.2f s (%.0f/s, %d in flight), %.2f KiB each" % (
            a.clients, r["login_s"], r["logins_per_s"], a.window, r["kib_per_conn"]))
        print(json.dumps(q))
        print("room of %d, %d senders at %g/s: p50 %s ms, p99 %s ms, max %s ms over %g s; "
              "achieved %s of %s deliveries/s, lost %s" % (
                  a.room, a.senders, a.rate, q.get("p50_ms"), q.get("p99_ms"), q.get("max_ms"),
                  a.duration, q.get("achieved_dps"), q.get("offered_dps"), q.get("lost")))
    finally:
        server.stop()


def bigroom(a: argparse.Namespace, binary: str) -> None:
    server = Server([])
    try:
        lines, err = loadgen(binary, server, "-m", "fanout", "-c", str(a.clients), "-r", "1",
                             "-s", "1", "-R", str(a.messages), "-w", str(a.window),
                             "--warmup", "0.5", "-d", "3", "-D", "10", "--settle-max", "60",
                             "--login-timeout", "120", "--max-time", "300")
        login = re.search(r"(\d+) clients logged in in ([\d.]+) s", err)
        r = lines[-1]
        print("room of %d: logged in in %s s; p50 %s ms, p99 %s ms, max %s ms of a message "
              "to everyone; achieved %s of %s deliveries/s, lost %s" % (
                  a.clients, login.group(2) if login else "?", r.get("p50_ms"), r.get("p99_ms"),
                  r.get("max_ms"), r.get("achieved_dps"), r.get("offered_dps"), r.get("lost")))
        print(json.dumps(r))
    finally:
        server.stop()


def idle(a: argparse.Namespace, binary: str) -> None:
    server = Server([])
    try:
        lines, _ = loadgen(binary, server, "-m", "idle", "-c", str(a.clients),
                           "--room-size", "10", "-w", str(a.window), "--hold", "2",
                           "--login-timeout", "120", "--max-time", "200")
        r = lines[-1]
        print("idle: %d connections, %.2f KiB each (RSS %s -> %s KiB), %.0f logins/s, dead %s" % (
            r["conns"], r["kib_per_conn"], r["rss_base_kib"], r["rss_kib"], r["logins_per_s"],
            r["dead"]))
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("--bench", default=os.environ.get("BENCH_DIR", "/work/shared/bench"),
                    help="the harness directory (its loadgen.c)")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("storm")
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--window", type=int, default=10000, help="logins in flight (all at once)")
    p.add_argument("--room", type=int, default=100)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=20)
    p.add_argument("--duration", type=float, default=6)
    p = sub.add_parser("bigroom")
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--messages", type=float, default=3)
    p = sub.add_parser("idle")
    p.add_argument("--clients", type=int, default=19000)
    p.add_argument("--window", type=int, default=8)
    a = ap.parse_args()
    binary = loadgen_binary(a.bench)
    {"storm": storm, "bigroom": bigroom, "idle": idle}[a.what](a, binary)


if __name__ == "__main__":
    main()
