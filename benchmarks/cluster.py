"""
One room of 100 over two processes (a Redis cluster) against one process,
on the same CPU budget (issue 18, docs/CLUSTER.md "Numbers").

    python benchmarks/cluster.py [--quick] [--server-cpus 0] [--loadgen-cpu 1]

The shared harness's loadgen (/work/shared/bench, or BENCH_DIR) runs the
fanout-100 scenario (100 clients, 10 senders, rates stepped up from the
moderate step of 19,800 deliveries/s until one fails) twice:

- single: one C{twistd chat} (as bench.py starts it: --db :memory: --rate 0),
- cluster: two C{twistd chat --redis} and their C{redis-server}, with
  C{loadgen -p A,B} spreading the room's members over both (half each, so
  half of every message's deliveries cross Redis).

Everything server-side is pinned to the same cores (C{--server-cpus}, one
core by default, as bench.py pins one server): the cluster gets no more CPU
than the single process, so the comparison is the backplane's overhead, not
a second core's gain.  loadgen gets its own core.  For each run it prints
the maximum sustained deliveries/s, p50/p99 at the moderate step, and the
CPU each process (and Redis) used per second of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.environ.get("BENCH_DIR", "/work/shared/bench")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
TICK = os.sysconf("SC_CLK_TCK")
MODERATE = 20.0  # the per-sender rate of the first step (bench.py's "moderate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("a server exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nothing listens on %d" % port)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of C{pid} so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Fleet:
    """The processes of one run, pinned; stopped by their own PIDs."""

    def __init__(self, cpus: str, work: str) -> None:
        self.cpus = cpus
        self.work = work
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], port: int) -> None:
        log = open(os.path.join(self.work, name + ".log"), "wb")  # noqa: SIM115
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen(["taskset", "-c", self.cpus, *argv], cwd=self.work, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        wait_port(port, proc)

    def chat(self, name: str, *extra: str) -> int:
        port = free_port()
        twistd = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
        self.start(name, [sys.executable, "-c", twistd, "-n", "--pidfile=",
                          "chat", "--port", "tcp:%d:interface=127.0.0.1" % port,
                          "--passcode", "x", "--rate", "0", "--db", ":memory:",
                          "--max-per-ip", "100000", "--max-clients", "100000", *extra], port)
        return port

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(proc.pid) for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _redis_stats(port: int) -> dict[str, int]:
    """Redis's command counts and network bytes so far (redis-cli INFO)."""
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    out = subprocess.run([cli, "-p", str(port), "INFO", "all"], capture_output=True,
                         text=True, timeout=10).stdout
    stats = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key in ("cmdstat_xadd", "cmdstat_xread", "cmdstat_evalsha", "cmdstat_eval"):
            stats[key[8:]] = int(value.split(",")[0].split("=")[1])
        elif key in ("total_net_input_bytes", "total_net_output_bytes"):
            stats[key] = int(value)
    return stats


def loadgen_binary() -> str:
    sys.path.insert(0, BENCH)
    import bench  # the shared harness: it compiles loadgen.c into /tmp/bench-build

    path: str = bench.build_c("loadgen", os.path.join(BENCH, "loadgen.c"))
    return path


def run(kind: str, args: argparse.Namespace, loadgen: str) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="cluster-bench-")
    fleet = Fleet(args.server_cpus, work)
    try:
        redis_port = 0
        if kind == "single":
            ports = [fleet.chat("chat")]
        else:
            redis_port = free_port()
            fleet.start("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"], redis_port)
            url = "redis://127.0.0.1:%d/0" % redis_port
            ports = [fleet.chat("chat-a", "--redis", url, "--node-name", "a"),
                     fleet.chat("chat-b", "--redis", url, "--node-name", "b")]
            time.sleep(0.5)  # both connected to Redis
        steps = ["-m", "step", "-c", "100", "-r", "1", "-s", "10", "--step-start",
                 str(MODERATE), "-d", "1", "-D", "1", "--warmup", "0.3",
                 "--bisect", "1" if args.quick else "2",
                 "--max-time", "30" if args.quick else "60"]
        if args.quick:
            steps += ["--step-max", str(MODERATE * 16)]
        first = next(iter(fleet.procs.values())).pid
        argv = ["taskset", "-c", args.loadgen_cpu, loadgen, "-p", ",".join(map(str, ports)),
                "-a", "chat", "-P", "x", "--pid", str(first), "-q", *steps]
        before, started = fleet.cpu(), time.monotonic()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=150)
        wall = time.monotonic() - started
        after = fleet.cpu()
        redis_stats = _redis_stats(redis_port) if kind == "cluster" else {}
        lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit("loadgen said nothing: %s" % out.stderr[-500:])
        final = lines[-1]
        moderate = [row for row in final.get("table", []) if abs(row["rate"] - MODERATE) < 1e-6]
        return {
            "kind": kind,
            "max_dps": final.get("max_sustainable_dps"),
            "stop": final.get("stop"),
            "mod_p50_ms": moderate[0]["p50_ms"] if moderate else None,
            "mod_p99_ms": moderate[0]["p99_ms"] if moderate else None,
            "cpu_per_s": {name: round((after[name] - before[name]) / wall, 3) for name in after},
            "wall_s": round(wall, 1),
            # messages sent (measured seconds plus each step's 0.3 s warm-up)
            "messages": round(sum(line.get("sent", 0) for line in lines) * 1.3),
            "redis": redis_stats,
            "steps": [(row["rate"], row.get("achieved_dps"), row["p99_ms"], row["pass"])
                      for row in final.get("table", [])],
        }
    finally:
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter steps (a check that it works, not a measurement)")
    parser.add_argument("--server-cpus", default=os.environ.get("BENCH_SERVER_CPU", "0"),
                        help="cores for every server process, Redis included (taskset -c)")
    parser.add_argument("--loadgen-cpu", default=os.environ.get("BENCH_LOADGEN_CPU", "1"))
    parser.add_argument("--only", choices=("single", "cluster"))
    args = parser.parse_args()
    loadgen = loadgen_binary()
    results = [run(kind, args, loadgen) for kind in ("single", "cluster")
               if args.only in (None, kind)]
    for result in results:
        print(json.dumps(result))
    if len(results) == 2 and results[0]["max_dps"]:
        ratio = (results[1]["max_dps"] or 0) / results[0]["max_dps"]
        print("cluster / single maximum: %.0f%% (target >= 50%%); cluster p99 at the moderate"
              " step: %s ms (target <= 5)" % (100 * ratio, results[1]["mod_p99_ms"]))


if __name__ == "__main__":
    main()
