"""
Soak test: the real C{twistd -n chat} under hundreds of clients that join,
chat, switch rooms and drop in every way (C{/quit}, FIN, RST, mid-login),
then reconnect; afterwards the server must be empty, back to its memory
level, and its log clean.

    python benchmarks/soak.py                 # 60 s, 300 clients
    python benchmarks/soak.py --seconds 10    # smoke run

All clients live in one process on one asyncio loop (no thread per client).
Every wait has a timeout and the whole run has a watchdog.

Memory baseline: the server's RSS (VmRSS in /proc/PID/status) measured
after a first warm-up wave of the same load has ended and every client has
gone.  Not the RSS at start-up: CPython's allocator keeps the arenas (and
SQLite its page cache) that the first peak needed, so the level after one
full wave is what an idle server that has seen this load looks like.  After
the main run the RSS must be back within C{--tolerance} (10%) of it; a leak
per connection, per room or per message would show as growth over the main
run's thousands of sessions.

Exit status: 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSCODE = "soak"
ROOMS = ["room%d" % i for i in range(20)]
LOG_PROBLEMS = re.compile(r"Traceback|Unhandled|#error\]|#critical\]")


@dataclass
class Stats:
    """What the clients did and saw."""

    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    rss_samples: list[int] = field(default_factory=list)

    def error(self, line: str) -> None:
        # group "ERROR nobody called s12_3 is online" by its first words
        self.errors[" ".join(line.split()[:3])] += 1


def rss_kib(pid: int) -> int:
    """The resident set size of C{pid}, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of C{pid}."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """C{twistd -n chat} on a free loopback port, in a temporary directory."""

    def __init__(self, directory: str, clients: int) -> None:
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        command = [twistd] if os.path.exists(twistd) else [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
        command += ["-n", "--pidfile=", "chat", "--port", "tcp:0:interface=127.0.0.1",
                    "--passcode", PASSCODE, "--db", os.path.join(directory, "soak.db"),
                    "--rate", "0"]
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        helptext = subprocess.run(command[:command.index("chat") + 1] + ["--help"],
                                  env=env, capture_output=True, text=True, timeout=60).stdout
        if "--max-per-ip" in helptext:  # every soak client comes from 127.0.0.1
            command += ["--max-per-ip", str(clients * 2 + 100)]
        if "--max-clients" in helptext:
            command += ["--max-clients", str(clients * 2 + 100)]
        self.command = command
        self.log_path = os.path.join(directory, "twistd.log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (stop() closes it)
        self.process = subprocess.Popen(command, cwd=directory, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        self.port = self._wait_for_port(30.0)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"line protocol listening on 127\.0\.0\.1:(\d+)", self.log())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise SystemExit("twistd did not start:\n" + self.log())

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; the exit status, or None if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


class Connection:
    """One client connection: a reader task counting what arrives."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.welcomed = asyncio.Event()
        self.closed = asyncio.Event()
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self._task: asyncio.Task[None] | None = None

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, limit=1 << 20), 10)
        self.stats.counts["connections"] += 1
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        counts = self.stats.counts
        try:
            while True:
                raw = await self.reader.readline()
                if not raw:
                    break
                if not raw.endswith(b"\r\n"):
                    counts["partial lines"] += 1
                    break
                line = raw[:-2].decode("utf-8")
                counts["lines received"] += 1
                if line.startswith("ERROR "):
                    self.stats.error(line)
                elif line.startswith("Welcome, "):
                    self.welcomed.set()
                elif ": soak " in line:
                    counts["messages received"] += 1
        except (ConnectionError, UnicodeDecodeError, asyncio.IncompleteReadError) as e:
            counts["read ended by %s" % type(e).__name__] += 1
        finally:
            self.closed.set()

    def send(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())

    async def wait_closed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def close(self, reset: bool) -> None:
        """Close with FIN, or (C{reset}) with RST via SO_LINGER 0."""
        if reset:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()

    async def finish(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


async def client(slot: int, port: int, until: float, stats: Stats, think: float,
                 rng: random.Random) -> None:
    """One client slot: sessions one after another until C{until}."""
    counts = stats.counts
    generation = 0
    await asyncio.sleep(rng.uniform(0, 2.0))  # ramp up
    while time.monotonic() < until:
        generation += 1
        conn = Connection(stats)
        try:
            await conn.open(port)
        except (TimeoutError, OSError) as e:
            counts["connect failed: %s" % type(e).__name__] += 1
            await asyncio.sleep(0.5)
            continue
        try:
            await session(conn, "s%d_%d" % (slot, generation), until, stats, think, rng)
        except (ConnectionError, OSError) as e:
            counts["session broken: %s" % type(e).__name__] += 1
            conn.close(reset=True)
        finally:
            await conn.finish()
        await asyncio.sleep(rng.uniform(0.0, 0.5))


async def session(conn: Connection, name: str, until: float, stats: Stats, think: float,
                  rng: random.Random) -> None:
    """Log in, do things until C{until} or a random end, then leave somehow."""
    counts = stats.counts
    if rng.random() < 0.1:  # drop mid-login
        if rng.random() < 0.5:
            conn.send(PASSCODE)
        await asyncio.sleep(rng.uniform(0, 0.2))
        conn.close(reset=rng.random() < 0.5)
        counts["dropped mid-login"] += 1
        return
    conn.send(PASSCODE, name)
    try:
        await asyncio.wait_for(conn.welcomed.wait(), 15)
    except TimeoutError:
        counts["login timed out (client side)"] += 1
        conn.close(reset=True)
        return
    counts["logins"] += 1
    actions = rng.randint(5, 60)
    for _ in range(actions):
        if time.monotonic() >= until or conn.closed.is_set():
            break
        roll = rng.random()
        if roll < 0.55:
            conn.send("soak %s says %d %s"
                      % (name, rng.randint(0, 1 << 30), "x" * rng.randint(0, 80)))
            counts["messages sent"] += 1
        elif roll < 0.67:
            conn.send("/join %s" % rng.choice(ROOMS))
            counts["joins"] += 1
        elif roll < 0.72:
            conn.send("/leave")
        elif roll < 0.82:
            slot = rng.randint(0, 300)
            conn.send("/msg s%d_%d soak psst" % (slot, rng.randint(1, 3)))
            counts["private messages"] += 1
        elif roll < 0.86:
            conn.send("/me soak waves")
        elif roll < 0.90:
            conn.send("/users")
        elif roll < 0.93:
            conn.send("/rooms")
        elif roll < 0.96:
            conn.send("/history 5")
        else:
            conn.send("/users all")
        await conn.writer.drain()
        await asyncio.sleep(rng.expovariate(1.0 / think))
    end = rng.random()
    if end < 0.4:
        conn.send("/quit soak over")
        await conn.writer.drain()
        if await conn.wait_closed(10):
            counts["ended by /quit"] += 1
        else:
            counts["/quit did not close"] += 1
            conn.close(reset=True)
    elif end < 0.7:
        conn.close(reset=False)
        counts["ended by FIN"] += 1
    else:
        conn.close(reset=True)
        counts["ended by RST"] += 1


async def wave(port: int, clients: int, seconds: float, stats: Stats, think: float,
               seed: int) -> None:
    """Run every client slot for C{seconds} (plus the time each needs to leave)."""
    until = time.monotonic() + seconds
    tasks = [asyncio.ensure_future(client(slot, port, until, stats, think,
                                          random.Random(seed * 100_003 + slot)))
             for slot in range(clients)]
    done, pending = await asyncio.wait(tasks, timeout=seconds + 60)
    for task in pending:
        task.cancel()
    if pending:
        stats.counts["client slots that did not finish"] += len(pending)
        await asyncio.wait(pending, timeout=10)
    for task in done:
        if task.exception() is not None:
            stats.counts["client crashed: %r" % (task.exception(),)] += 1


async def observe(port: int, timeout: float = 15.0) -> tuple[bool, list[str]]:
    """
    Log in a fresh observer; C{True} when C{/users all} shows only it and
    C{/rooms} only the lobby with it.  Retries while departures settle.
    """
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        name = "observer%d" % attempt
        writer.write(("%s\r\n%s\r\n/users all\r\n/rooms\r\n/quit\r\n" % (PASSCODE, name)).encode())
        await writer.drain()
        seen = []
        try:
            while True:
                raw = await asyncio.wait_for(reader.readline(), 10)
                if not raw:
                    break
                seen.append(raw.decode("utf-8").rstrip("\r\n"))
        except TimeoutError:
            seen.append("(timed out)")
        writer.close()
        users = [line for line in seen if line.startswith("Users online")]
        rooms = [line for line in seen if line.startswith("Rooms (")]
        if (users == ["Users online (1): %s (#lobby)" % name]
                and rooms == ["Rooms (1): #lobby (1)"]):
            return True, seen
        await asyncio.sleep(1.0)
    return False, seen


async def sample_rss(pid: int, stats: Stats, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            stats.rss_samples.append(rss_kib(pid))
        except (OSError, RuntimeError):
            return
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def settle_rss(pid: int, seconds: float = 3.0) -> int:
    """RSS once the idle server has had a moment (minimum over a few samples)."""
    await asyncio.sleep(1.0)
    samples = []
    for _ in range(int(seconds / 0.5)):
        samples.append(rss_kib(pid))
        await asyncio.sleep(0.5)
    return min(samples)


async def run(args: argparse.Namespace, server: Server) -> int:
    failures: list[str] = []
    warmup = max(3.0, min(15.0, args.seconds / 4))
    main_part = max(1.0, args.seconds - warmup)
    stats = Stats()
    stop_sampling = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(server.pid, stats, stop_sampling))
    rss_start = rss_kib(server.pid)
    started = time.monotonic()
    cpu_start = cpu_seconds(server.pid)

    print("warm-up wave: %d clients for %.0f s ..." % (args.clients, warmup), flush=True)
    await wave(server.port, args.clients, warmup, stats, args.think, args.seed)
    ok, seen = await observe(server.port)
    if not ok:
        failures.append("after the warm-up the server was not empty: %r" % seen[-6:])
    rss_base = await settle_rss(server.pid)

    print("main wave: %d clients for %.0f s ..." % (args.clients, main_part), flush=True)
    await wave(server.port, args.clients, main_part, stats, args.think, args.seed + 1)
    ok, seen = await observe(server.port)
    if not ok:
        failures.append("after the run the server was not empty: %r" % seen[-6:])
    rss_end = await settle_rss(server.pid)
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(server.pid) - cpu_start
    stop_sampling.set()
    await sampler

    counts = stats.counts
    growth = (rss_end - rss_base) / rss_base
    if growth > args.tolerance:
        failures.append("RSS grew %.1f%% over the main run (baseline %d KiB, end %d KiB)"
                        % (growth * 100, rss_base, rss_end))
    log = server.log()
    problems = [line for line in log.splitlines() if LOG_PROBLEMS.search(line)]
    if problems:
        failures.append("%d problem lines in the server log, first: %s"
                        % (len(problems), problems[0]))
    for key in list(counts):
        if key.startswith(("client crashed", "client slots that did not", "/quit did not",
                           "login timed out", "partial lines", "connect failed")):
            failures.append("%s: %d" % (key, counts[key]))
    for key, count in stats.errors.items():
        if "failed" in key or "too long" in key or "slow down" in key:
            failures.append("unexpected %r x%d" % (key, count))
    if counts["logins"] == 0 or counts["messages received"] == 0:
        failures.append("no traffic happened")
    status = server.stop()
    if status not in (0, -signal.SIGTERM):
        failures.append("twistd exit status %r after SIGTERM" % (status,))
    log = server.log()
    if LOG_PROBLEMS.search(log):
        failures.append("problem lines in the log after shutdown")

    print()
    print("soak: %d clients, %.0f s (warm-up %.0f s + main %.0f s), think %.2f s, server pid %d"
          % (args.clients, elapsed, warmup, main_part, args.think, server.pid))
    for key in sorted(counts):
        print("  %-40s %10d" % (key, counts[key]))
    for key, count in stats.errors.most_common():
        print("  %-40s %10d" % (key, count))
    peak = max(stats.rss_samples) if stats.rss_samples else 0
    print("  server CPU                               %9.1f s (%.0f%% of wall)"
          % (cpu, 100 * cpu / elapsed))
    print("  messages received / s                    %10.0f"
          % (counts["messages received"] / elapsed))
    print("  RSS at start                             %7d KiB" % rss_start)
    print("  RSS peak under load                      %7d KiB" % peak)
    print("  RSS baseline (idle after warm-up wave)   %7d KiB" % rss_base)
    print("  RSS at end (idle after main wave)        %7d KiB (%+.1f%%, limit +%.0f%%)"
          % (rss_end, growth * 100, args.tolerance * 100))
    print("  server log                               %s" % server.log_path)
    print()
    if failures:
        print("FAILED:")
        for failure in failures:
            print("  - " + failure)
        return 1
    print("OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--seconds", type=float, default=60.0, help="total run time (default 60)")
    parser.add_argument("--clients", type=int, default=300, help="client slots (default 300)")
    parser.add_argument("--think", type=float, default=0.5,
                        help="mean seconds between a client's lines (default 0.5)")
    parser.add_argument("--tolerance", type=float, default=0.10,
                        help="allowed RSS growth over the baseline (default 0.10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="twisted-chat-soak-")
    server = Server(directory, args.clients)
    try:
        watchdog = args.seconds * 2 + 180
        return asyncio.run(asyncio.wait_for(run(args, server), watchdog))
    except TimeoutError:
        print("FAILED: the soak run did not finish within %.0f s" % (args.seconds * 2 + 180))
        return 1
    finally:
        server.stop()
        server.kill()
        if args.keep:
            print("kept", directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
