"""Servers under load for benchmarks.serve: start a server, drive it with wrk, read its CPU and RSS.

A ``Server`` is a server's command line and how to talk to it (TEI's body and answer, or OpenAI's);
``measure`` runs every clients x sentences-per-request cell against one running server, ``memory`` the
RSS of a fresh one after many requests. CPU and RSS are the server's process tree's (a Ray instance's
processes included); between windows the server is left until it uses no more CPU than it did idle after
starting. wrk is Debian's package, unpacked into build/tools/wrk without installing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common.paths import BENCH, ROOT
from benchmarks.common.timing import log

WORK = BENCH / "serve"
WRK = ROOT / "build" / "tools" / "wrk"
NAME = "all-MiniLM-L6-v2"
CLIENTS = (1, 16, 64, 256)
SIZES = (1, 32)
CHECK = ["A man is playing a guitar.", "A woman slices an onion.", "Two dogs run on the beach.", "Hello"]

# wrk's script: cycles through one JSON body per line of $SERVE_BODIES; with $SERVE_LIMIT it says LIMIT once
# that many responses came back (the driver then stops wrk with SIGINT); prints one JSON line at the end.
LUA = """
local limit, count, n, bodies = tonumber(os.getenv("SERVE_LIMIT") or "0"), 0, 0, {}
init = function(args)
  for line in io.lines(os.getenv("SERVE_BODIES")) do
    bodies[#bodies + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, line)
  end
end
request = function() n = n % #bodies + 1; return bodies[n] end
if limit > 0 then
  response = function()
    count = count + 1
    if count == limit then io.write("LIMIT\\n"); io.flush() end
  end
end
done = function(s, latency)
  local e = s.errors
  io.write(string.format('WRK {"requests": %d, "duration_s": %.3f, "errors": {"connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d}, "p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.1f}\\n',
    s.requests, s.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


@dataclass
class Server:
    """A server to start: its command line, where, with what environment, and how to ask it."""

    name: str
    argv: list[str]
    route: str
    openai: bool = False  # body {"input", "model"} and answer {"data": [{"embedding"}]}; else TEI's
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)

    def body(self, texts: str | list[str]) -> bytes:
        return json.dumps({"input": texts, "model": NAME} if self.openai else {"inputs": texts}).encode()

    def vectors(self, answer: Any) -> list[list[float]]:
        return [row["embedding"] for row in answer["data"]] if self.openai else answer


def sh(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, **kwargs)


def wrk_command() -> list[str]:
    """wrk from Debian's package, unpacked with its LuaJIT into build/tools/wrk (nothing installed)."""
    binary, libs = WRK / "usr" / "bin" / "wrk", WRK / "usr" / "lib" / "x86_64-linux-gnu"
    if not binary.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            for package in ("wrk", "libluajit2-5.1-2 | libluajit-5.1-2"):
                if not any(
                    sh(["apt-get", "download", p], cwd=tmp).returncode == 0 for p in package.split(" | ")
                ):
                    raise SystemExit(f"apt-get download {package} failed: run apt-get update, or install wrk")
            WRK.mkdir(parents=True, exist_ok=True)
            for deb in Path(tmp).glob("*.deb"):
                subprocess.run(["dpkg", "-x", str(deb), str(WRK)], check=True)
    return ["env", f"LD_LIBRARY_PATH={libs}", str(binary)]


# --- servers and load -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def start(system: Server, port: int, log_file: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start the server; return it and its start time (to GET /health == 200), or raise with its log."""
    env = os.environ | system.env
    out = log_file.open("wb")
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [*system.argv, "--port", str(port)], cwd=system.cwd, env=env, stdout=out, stderr=out
    )
    while time.perf_counter() - t0 < 300:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    stop(process)
    raise RuntimeError(f"{system.name} did not start: {log_file.read_text(errors='replace')[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 60 s; what it started and left (a Ray instance's processes) 10 s later."""
    started = {pid: at for pid in tree(process.pid)[1:] if (at := started_at(pid)) is not None}
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    deadline = time.perf_counter() + 10
    while (
        left := [p for p, at in started.items() if started_at(p) == at]
    ) and time.perf_counter() < deadline:
        time.sleep(0.2)
    for pid in left:  # the very processes it started (same pid, same start time)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            log(f"serve: killed {pid}, left running by the server")


def started_at(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None if it is gone: a pid with its start time
    names one process, even once the pid is reused."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the process tree."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += sum(int(x) for x in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
    return total / os.sysconf("SC_CLK_TCK")


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait), from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of the process tree (MB: 10^6 bytes)."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1])
    return round(total * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)


def idle_share(pid: int, seconds: float = 2) -> float:
    """The share of a core the server uses, unloaded (a Ray instance: about 0.1)."""
    before = cpu_s(pid)
    time.sleep(seconds)
    return (cpu_s(pid) - before) / seconds


def settle(pid: int, idle: float = 0, limit_s: float = 120) -> None:
    """Wait until the server uses at most 5% of a core more than ``idle`` (a finished load's work is done)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        before = cpu_s(pid)
        time.sleep(0.5)
        if cpu_s(pid) - before < 0.5 * (idle + 0.05):
            return


def load(url: str, bodies: Path, clients: int, seconds: float, server: int, limit: int = 0) -> dict[str, Any]:
    """One wrk run: ``clients`` connections for ``seconds`` (or until ``limit`` responses), with CPU used."""
    script = WORK / "load.lua"
    script.write_text(LUA)
    argv = [
        *wrk_command(),
        "-t1",
        f"-c{clients}",
        f"-d{round(seconds)}s",
        "--timeout",
        "120s",
        "-s",
        str(script),
        url,
    ]
    env = os.environ | {"SERVE_BODIES": str(bodies), "SERVE_LIMIT": str(limit)}
    server_before, busy_before, t0 = cpu_s(server), busy_s(), time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    result: dict[str, Any] = {}
    for line in process.stdout:
        if line.startswith("LIMIT"):
            process.send_signal(signal.SIGINT)
        elif line.startswith("WRK "):
            result = json.loads(line[4:])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if not result:
        raise RuntimeError(f"wrk gave no result (exit status {process.returncode}): {' '.join(argv)}")
    result["ok"] = result["requests"] - result["errors"]["status"]
    result["server_cpu_pct"] = round(100 * (cpu_s(server) - server_before) / wall)
    result["wrk_cpu_pct"] = round(100 * (usage.ru_utime + usage.ru_stime) / wall)
    others = busy_s() - busy_before - (cpu_s(server) - server_before) - usage.ru_utime - usage.ru_stime
    result["others_cpu_pct"] = max(0, round(100 * others / wall))
    return result


def write_bodies(system: Server, texts: list[str]) -> dict[int, Path]:
    files = {}
    for size in SIZES:
        files[size] = WORK / f"bodies-{system.name}-{size}.jsonl"
        chunks = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
        lines = [system.body(chunk[0] if size == 1 else chunk).decode() for chunk in chunks]
        files[size].write_text("\n".join(lines) + "\n")
    return files


def agreement(system: Server, url: str, reference: list[list[float]]) -> float:
    """Smallest cosine between the server's embeddings of CHECK and the in-process variant's."""
    import numpy as np

    got = np.array(system.vectors(post(url, system.body(CHECK))))
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    return round(float((got * np.array(reference)).sum(axis=1).min()), 5)


def window(clients: int, size: int, rate: float | None, windows: tuple[float, float, float]) -> float:
    """A cell's window: at least 3 round trips at the previous cell's rate (None: the first cell), capped."""
    if rate is None:
        return windows[1]
    return windows[2] if not rate else min(windows[2], max(windows[1], 3 * clients * size / rate))


def measure(
    system: Server,
    texts: list[str],
    reference: list[list[float]],
    windows: Any,
    clients: tuple[int, ...] = CLIENTS,
    sizes: tuple[int, ...] = SIZES,
) -> Any:
    """Every ``clients`` x ``sizes`` (sentences/request) cell against one running server."""
    port, logs = free_port(), WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}{system.route}"
    process, startup = start(system, port, logs / f"{system.name}.log")
    figures: dict[str, Any] = {"command": " ".join(system.argv), "startup_s": round(startup, 1), "runs": []}
    try:
        figures["cosine"] = agreement(system, url, reference)
        figures["rss_start_mb"] = rss_mb(process.pid)
        figures["idle_cpu_pct"] = round(100 * (idle := idle_share(process.pid)))
        bodies = write_bodies(system, texts)
        for size in sizes:
            rate: float | None = None
            for count in clients:
                load(url, bodies[size], count, windows[0], process.pid)
                settle(process.pid, idle)
                seconds = window(count, size, rate, windows)
                run = {"clients": count, "size": size} | load(url, bodies[size], count, seconds, process.pid)
                run["req_s"] = round(run["ok"] / run["duration_s"], 1)
                run["sent_s"] = rate = round(run["req_s"] * size, 1)
                figures["runs"].append(run)
                log(f"serve: {system.name}, {count} x {size}: {rate} sent/s, p50 {run['p50_ms']} ms")
                settle(process.pid, idle)
        figures["rss_end_mb"] = rss_mb(process.pid)
    finally:
        stop(process)
    return figures


def memory(system: Server, texts: list[str], counts: tuple[int, int]) -> dict[str, Any]:
    """RSS of a fresh server after counts[0] and after counts[1] one-sentence requests, 16 clients."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{system.route}"
    process, _ = start(system, port, WORK / "logs" / "memory.log")
    idle = idle_share(process.pid)
    done: list[int] = []
    rss: list[float] = []
    errors = 0
    try:
        bodies = write_bodies(system, texts)[1]
        for count in counts:
            result = load(url, bodies, 16, 3600, process.pid, limit=count - sum(done))
            done.append(result["requests"])
            errors += sum(result["errors"].values())
            settle(process.pid, idle)
            rss.append(rss_mb(process.pid))
    finally:
        stop(process)
    log(f"serve: RSS {rss[0]} MB after {done[0]:,} requests, {rss[1]} MB after {sum(done):,}")
    growth = round(100 * (rss[1] - rss[0]) / rss[0], 2)
    return {"requests": [done[0], sum(done)], "rss_mb": rss, "growth_pct": growth, "errors": errors}
