"""
A login storm against a chatting room (issue 15, SPEC 7's abuse bound).

    python benchmarks/login_storm.py [--logins 200] [--wrong 0.25] [--rate 50]

Starts the real C{twistd -n chat} with C{--db} in a temporary directory
holding C{--logins} accounts (real argon2id hashes, default parameters:
64 MiB, t=3, p=4), two chatters in C{#bench} (one sends a timestamped line
every 1/C{--rate} s, the other measures how long each takes to arrive), then
opens C{--logins} connections at once, each logging in to its own account
with its password (a fraction C{--wrong} first with a wrong one: a wrong
password costs a verify too).  It prints the room's delivery latency (p50,
p99, max) before and during the storm, and how long the storm took.  The
target: p99 under 10 ms during the storm.

Everything runs on loopback: the chatters from 127.0.0.1, each storm
connection from its own 127.0.x.y (a storm comes from many hosts; three
wrong passwords from one address would lock it out for a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted_chat.storage.accounts import SQLiteAccounts  # noqa: E402

PASSCODE = "x"
PASSWORD = "correct horse battery"
STAMP = re.compile(r"t=(\d+)")


def start_server(directory: str, db: str) -> tuple[subprocess.Popen[bytes], int, str]:
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    command = [twistd] if os.path.exists(twistd) else [
        sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
    command += ["-n", "--pidfile=", "chat", "--port", "tcp:0:interface=127.0.0.1",
                "--passcode", PASSCODE, "--db", db, "--rate", "0",
                "--limit-exempt", "127.0.0.1"]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = os.path.join(directory, "twistd.log")
    log = open(log_path, "wb")  # noqa: SIM115 (the process owns it until the end)
    process = subprocess.Popen(command, cwd=directory, env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        match = re.search(r"line protocol listening on 127\.0\.0\.1:(\d+)", text)
        if match:
            return process, int(match.group(1)), log_path
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit("twistd did not start:\n" + text)


async def read_until(reader: asyncio.StreamReader, needle: bytes, timeout: float) -> bytes:
    data = b""
    async with asyncio.timeout(timeout):
        while needle not in data:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("closed; got %r" % data[-200:])
            data += chunk
    return data


async def chatter(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("%s\r\n%s\r\n" % (PASSCODE, name)).encode())
    await read_until(reader, b"Welcome, ", 10)
    writer.write(b"/join #bench\r\n")
    await read_until(reader, b"Users in #bench", 10)
    return reader, writer


async def storm_login(port: int, index: int, wrong: bool) -> float | str:
    """Log in as user<index>: the seconds it took, or why it failed."""
    start = time.perf_counter()
    # each from its own loopback address, as a storm comes from many hosts
    # (three wrong passwords from one address lock it out for a minute)
    source = "127.0.%d.%d" % (1 + index // 250, 1 + index % 250)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        name = "user%d" % index
        if wrong:
            writer.write(("%s\r\n%s\r\nwrong password\r\n" % (PASSCODE, name)).encode())
            await read_until(reader, b"ERROR wrong password", 120)
            writer.write(("%s\r\n%s\r\n" % (name, PASSWORD)).encode())
        else:
            writer.write(("%s\r\n%s\r\n%s\r\n" % (PASSCODE, name, PASSWORD)).encode())
        await read_until(reader, b"Welcome, " + name.encode(), 120)
        return time.perf_counter() - start
    except (ConnectionError, TimeoutError) as e:
        text = str(e)
        return "timed out" if "timed out" in text else text[-80:]
    finally:
        writer.close()


def summary(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return "n=%d" % len(latencies)
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return "n=%d p50=%.2f ms p99=%.2f ms max=%.2f ms" % (
        len(ms), statistics.median(ms), p99, ms[-1])


async def run(port: int, logins: int, wrong: float, rate: float, quiet: float) -> None:
    _, sender = await chatter(port, "sender")
    receiver, _ = await chatter(port, "receiver")
    latencies: list[tuple[float, float]] = []  # (when sent, latency)
    stop = asyncio.Event()

    async def send() -> None:
        while not stop.is_set():
            sender.write(b"t=%d\r\n" % time.perf_counter_ns())
            await asyncio.sleep(1 / rate)

    async def receive() -> None:
        buffer = b""
        while not stop.is_set():
            chunk = await receiver.read(65536)
            if not chunk:
                return
            now = time.perf_counter_ns()
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                match = STAMP.search(line.decode("utf-8", "replace"))
                if match:
                    sent = int(match.group(1))
                    latencies.append((sent / 1e9, (now - sent) / 1e9))

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    await asyncio.sleep(quiet)
    storm_start = time.perf_counter()
    step = max(1, int(1 / wrong)) if wrong > 0 else 0
    times = await asyncio.gather(*(storm_login(port, i, bool(step) and i % step == 0)
                                   for i in range(logins)))
    storm_end = time.perf_counter()
    done = [t for t in times if isinstance(t, float)]
    failed = [t for t in times if isinstance(t, str)]
    await asyncio.sleep(0.5)
    stop.set()
    for task in tasks:
        task.cancel()
    before = [lat for sent, lat in latencies if sent < storm_start]
    during = [lat for sent, lat in latencies if storm_start <= sent <= storm_end]
    print("room latency before the storm: %s" % summary(before))
    print("room latency during the storm: %s" % summary(during))
    print("storm: %d logins (%d with a wrong password first) in %.2f s; %d logged in"
          " (login time p50=%.2f s, max=%.2f s); %d failed%s"
          % (logins, sum(1 for i in range(logins) if step and i % step == 0),
             storm_end - storm_start, len(done), statistics.median(done) if done else 0,
             max(done) if done else 0, len(failed),
             " (%s)" % ", ".join(sorted(set(failed))) if failed else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--wrong", type=float, default=0.25,
                        help="fraction of logins that first send a wrong password")
    parser.add_argument("--rate", type=float, default=50.0, help="room lines a second")
    parser.add_argument("--quiet", type=float, default=3.0,
                        help="seconds of chat measured before the storm")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="login-storm-")
    try:
        db = os.path.join(directory, "chat.db")
        from argon2 import PasswordHasher

        started = time.perf_counter()
        hash = PasswordHasher().hash(PASSWORD)  # one real hash: every account costs a verify
        print("one argon2id hash (default parameters) here: %.0f ms"
              % ((time.perf_counter() - started) * 1000))
        store = SQLiteAccounts(db)
        for i in range(args.logins):
            store.add("user%d" % i, hash)
        store.close()
        process, port, log_path = start_server(directory, db)
        try:
            asyncio.run(run(port, args.logins, args.wrong, args.rate, args.quiet))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
            with open(log_path, encoding="utf-8", errors="replace") as f:
                log = f.read()
            print("server log: %d tracebacks, %d lines mentioning the password"
                  % (log.count("Traceback"), log.count(PASSWORD)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
