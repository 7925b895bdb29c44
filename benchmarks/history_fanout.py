"""
What room history costs on the fan-out path.

    python benchmarks/history_fanout.py writes     # SQLiteHistory write and search cost, no server
    python benchmarks/history_fanout.py fanout     # the real twistd, --db FILE vs --db :memory:

C{writes} times L{SQLiteHistory} on a file (WAL, synchronous=NORMAL, FTS5
index on, indexing in every flush as on an idle server): one transaction per
message (what an inline insert in C{say} would cost) against one transaction
per reactor turn for batches of 10 and 100 (what C{append} does), the
slowest single flush, and the worst C{/search} on a large database.

C{fanout} starts C{twistd -n --pidfile= chat --port tcp:PORT:interface=127.0.0.1
--passcode x --rate 0 --db DB} pinned to CPU 0 and runs the shared C load
generator (/work/shared/bench/loadgen.c) pinned to CPU 1 in step mode (100
clients in one room, 10 senders, rising rate; see /work/shared/bench/README.md)
with four bisection steps instead of bench.py's two (resolution about 4.5%
instead of 19%: the difference measured here is smaller than 19%),
alternating the variants run by run because the machine is shared and noisy.
It prints each run and the median maximum sustainable deliveries/s per
variant.  Variants: C{file} (--db in a temporary directory), C{memory}
(--db :memory:, whatever tap.build makes of it), C{sqlite-memory} and
C{memory-history} (the two candidates for :memory:, forced by wrapping
twistd so the comparison does not depend on tap.build's choice).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

LOADGEN_SRC = "/work/shared/bench/loadgen.c"
LOADGEN = "/tmp/bench-build/loadgen"
FIXED_ARGS = ["-m", "fanout", "-c", "100", "-s", "10", "-R", "200", "-d", "3"]
STEP_ARGS = ["-m", "step", "-c", "100", "-r", "1", "-s", "10", "--step-start", "20",
             "-d", "1", "-D", "1", "--warmup", "0.3", "--bisect", "4", "--max-time", "90"]

# Runs the real twistd with tap.build's history forced to one store.
FORCE = (
    "import sys, twisted_chat.tap as tap, twisted_chat.storage.history as history\n"
    "kind = sys.argv.pop(1)\n"
    "if kind == 'memory-history':\n"
    "    tap.SQLiteHistory = lambda path, clock: history.MemoryHistory()\n"
    "    tap.MemoryHistory = history.MemoryHistory\n"
    "else:\n"
    "    tap.MemoryHistory = lambda: history.SQLiteHistory(':memory:', tap_reactor())\n"
    "def tap_reactor():\n"
    "    from twisted.internet import reactor\n"
    "    return reactor\n"
    "from twisted.scripts.twistd import run\n"
    "run()\n"
)


# -- writes ------------------------------------------------------------------

def writes(args: argparse.Namespace) -> None:
    """Time inline and batched inserts, the slowest flush and a worst search."""
    from twisted.internet.task import Clock

    from twisted_chat.domain.events import Entry
    from twisted_chat.storage.history import SQLiteHistory

    directory = tempfile.mkdtemp(prefix="history-bench-")
    try:
        words = ["deploy", "the", "build", "tonight", "after", "lunch", "maybe", "tomorrow",
                 "coffee", "review", "merge", "request", "alice", "bob", "carol", "server",
                 "database"]
        count = args.messages
        texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(8)) + " %d" % i
                 for i in range(count)]
        results = {}
        busy = lambda: time.process_time() * 100  # noqa: E731 (a server never idle)
        for batch, deferred in ((1, False), (10, False), (100, False), (100, True)):
            path = os.path.join(directory, "w%d%s.db" % (batch, "d" if deferred else ""))
            clock = Clock()
            store = SQLiteHistory(path, clock, cpu=busy if deferred else None)
            worst = 0.0
            start = time.perf_counter()
            for i in range(0, count, batch):
                for text in texts[i:i + batch]:
                    store.append(Entry("lobby" if i % 3 else "dev", "alice", text, 1e9 + i))
                t0 = time.perf_counter()
                store.flush()
                worst = max(worst, time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
            store.close()
            results[batch, deferred] = elapsed / count
            print("batch %3d, %s: %6.1f us/message, slowest flush %.1f ms"
                  % (batch, "indexing deferred (busy server)" if deferred else
                     "indexed in each flush (idle server)", elapsed / count * 1e6, worst * 1e3))
        print("inline (batch 1) costs %.1fx the batch of 10"
              % (results[1, False] / results[10, False]))

        # The worst /search: a common prefix, in the small room, on a big table.
        path = os.path.join(directory, "w10.db")
        store = SQLiteHistory(path, Clock())
        for query in ("deploy", "d", "tonight lunch", "zzz", "%d" % (count - 5)):
            t0 = time.perf_counter()
            try:
                found = len(store.search_now("dev", query, 20))
            except Exception as e:  # SearchTooSlow: what the user would see
                found = "ERROR %s" % e
            print("/search %-14s in #dev (%d messages in the file): %6.1f ms, %s"
                  % (query, count, (time.perf_counter() - t0) * 1e3, found))
        store.close()

        # After a flood nothing was indexed: /search indexes the backlog first.
        store = SQLiteHistory(os.path.join(directory, "w100d.db"), Clock())
        for attempt in (1, 2, 3):
            t0 = time.perf_counter()
            try:
                found = len(store.search_now("dev", "deploy", 20))
            except Exception as e:  # SearchTooSlow: what the user would see
                found = "ERROR %s" % e
            print("/search deploy after a flood of %d unindexed messages, attempt %d: %6.1f ms, %s"
                  % (count, attempt, (time.perf_counter() - t0) * 1e3, found))
        store.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- fanout ------------------------------------------------------------------

def build_loadgen() -> str:
    if not os.path.exists(LOADGEN) or os.path.getmtime(LOADGEN) < os.path.getmtime(LOADGEN_SRC):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", LOADGEN, LOADGEN_SRC, "-lm"], check=True)
    return LOADGEN


def start_server(variant: str, directory: str) -> tuple[subprocess.Popen, int, object]:
    """Start twistd for C{variant}; return it, its port and its log file."""
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    options = ["-n", "--pidfile=", "chat", "--port", "tcp:0:interface=127.0.0.1",
               "--passcode", "x", "--rate", "0"]
    if variant == "file":
        path = os.path.join(directory, "chat.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        command = [twistd] + options + ["--db", path]
    elif variant == "memory":
        command = [twistd] + options + ["--db", ":memory:"]
    else:
        command = [sys.executable, "-c", FORCE, variant] + options + ["--db", ":memory:"]
    # Lift the per-address connection limits when this version has them (as bench.py does).
    env = dict(os.environ, PYTHONPATH=ROOT)
    usage = subprocess.run([twistd, "chat", "--help"], cwd=directory, env=env,
                           capture_output=True, text=True).stdout
    for option in ("--max-per-ip", "--max-clients"):
        if option in usage:
            command += [option, "100000"]
    log_path = os.path.join(directory, "twistd-%s.log" % variant)
    log = open(log_path, "w+b")  # noqa: SIM115 (one_run closes it with the server)
    process = subprocess.Popen(["taskset", "-c", "0"] + command, cwd=directory, env=env,
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        match = re.search(rb"line protocol listening on 127\.0\.0\.1:(\d+)", log.read())
        if match:
            return process, int(match.group(1)), log
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    log.seek(0)
    raise SystemExit("twistd did not start:\n" + log.read().decode("utf-8", "replace"))


def one_run(variant: str, directory: str, loadgen: str, load: str) -> dict:
    process, port, log = start_server(variant, directory)
    try:
        argv = ["taskset", "-c", "1", loadgen, "-p", str(port), "-a", "chat", "-P", "x",
                "--pid", str(process.pid), "-q"] + (STEP_ARGS if load == "step" else FIXED_ARGS)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=150)
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        final = lines[-1] if lines else {"error": out.stderr[-300:]}
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
    rows = 0
    if variant == "file":
        import sqlite3
        db = sqlite3.connect(os.path.join(directory, "chat.db"))
        rows = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        db.close()
    if load == "fixed":
        achieved = final.get("achieved_dps") or final.get("achieved") or 0
        cpu = final.get("srv_cpu")
        return {
            "variant": variant,
            "achieved_dps": achieved,
            "p99_ms": final.get("p99_ms"),
            "srv_cpu": cpu,
            # server CPU per delivery: what the maximum throughput is the inverse of
            "cpu_ns_per_delivery": round(cpu / achieved * 1e9, 1) if cpu and achieved else None,
            "pass": final.get("pass"),
            "rows": rows,
            "error": final.get("error"),
        }
    return {
        "variant": variant,
        "max_dps": final.get("max_sustainable_dps"),
        "p99_ms": final.get("p99_ms_at_max"),
        "srv_core": final.get("srv_core_busy_at_max"),
        "stop": final.get("stop"),
        "rows": rows,
        "error": final.get("error"),
    }


def fanout(args: argparse.Namespace) -> None:
    """Alternate the variants, several runs each; print the medians."""
    loadgen = build_loadgen()
    directory = tempfile.mkdtemp(prefix="history-fanout-")
    results: dict[str, list[float]] = {variant: [] for variant in args.variants}
    try:
        for round_ in range(args.runs):
            for variant in args.variants:
                run = one_run(variant, directory, loadgen, args.load)
                print(json.dumps(dict(run, round=round_ + 1)), flush=True)
                value = run["max_dps" if args.load == "step" else "cpu_ns_per_delivery"]
                if value:
                    results[variant].append(value)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print()
    base = statistics.median(results[args.variants[0]]) if results[args.variants[0]] else None
    for variant, values in results.items():
        if not values:
            print("%-15s no result" % variant)
            continue
        median = statistics.median(values)
        ratio = " (%.0f%% of %s)" % (100 * median / base, args.variants[0]) if base else ""
        unit = "deliveries/s" if args.load == "step" else "server CPU ns per delivery"
        print("%-15s median %8.0f %s over %d runs%s; runs: %s"
              % (variant, median, unit, len(values), ratio, ", ".join("%.0f" % v for v in values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("writes", help="write and search cost of SQLiteHistory (no server)")
    w.add_argument("--messages", type=int, default=200_000)
    f = sub.add_parser("fanout", help="the real server: --db FILE vs --db :memory:")
    f.add_argument("--runs", type=int, default=5)
    f.add_argument("--load", choices=["step", "fixed"], default="step",
                   help="step: maximum sustainable deliveries/s (loadgen -m step, as bench.py);"
                   " fixed: 100 clients, 10 senders at 200 msgs/s each for 3 s, server CPU"
                   " per delivery (less sensitive to other tenants of the machine)")
    f.add_argument("--variants", nargs="+", default=["memory", "file"],
                   choices=["memory", "file", "sqlite-memory", "memory-history"])
    args = parser.parse_args()
    writes(args) if args.what == "writes" else fanout(args)


if __name__ == "__main__":
    main()
