"""Start and stop the servers under test as real subprocesses, and read their memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Server:
    """A running server subprocess and the port it listens on."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:port"""
        return f"http://{HOST}:{self.port}"

    def peak_rss_mib(self) -> float:
        """Peak resident set (VmHWM) of the process and its workers, in MiB."""
        return sum(status_kib(pid, "VmHWM") for pid in self.pids()) / 1024

    def cpu_seconds(self) -> float:
        """CPU time the process and its workers have used so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def pids(self) -> list[int]:
        """The process and its children (`serve --workers N` forks N of them)."""
        return [self.process.pid, *children(self.process.pid)]


def status_kib(pid: int, field: str) -> int:
    """One `kB` field of /proc/<pid>/status (0 if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: utime and stime are fields 14 and 15 of the whole line.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_ticks() -> tuple[int, int]:
    """The machine's CPU ticks stolen by its hypervisor so far, and all its ticks (/proc/stat)."""
    try:
        fields = [
            int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
    except (OSError, ValueError):
        return (0, 0)
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return (fields[7] if len(fields) > 7 else 0, sum(fields[:8]))


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_listening(server: Server, log: Path) -> None:
    """Block until the port accepts connections; fail with the log tail if it exits."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, server.port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} did not listen on {server.port} within the timeout")


def stop(server: Server) -> None:
    """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it lingers."""
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def running(name: str, module_args: list[str], env: dict[str, str], logs: Path) -> Iterator[Server]:
    """Run `python -m <module_args> --port P` until the block exits, whatever happens in it."""
    port = free_port()
    log = logs / f"{name}.log"
    command = [sys.executable, "-m", *module_args, "--port", str(port)]
    full_env = os.environ | {"PYTHONUNBUFFERED": "1"} | env
    with log.open("wb") as sink:
        # Own session: a Ctrl-C reaches only the bench, which then stops this cleanly.
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=sink, stderr=sink, start_new_session=True
        )
    server = Server(name, process, port)
    try:
        wait_until_listening(server, log)
        yield server
    finally:
        stop(server)
