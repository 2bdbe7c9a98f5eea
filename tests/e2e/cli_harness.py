"""Real ``commerce-gateway`` processes for the CLI tests: start, wait, stop, and find what they left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from gateway.stores import runtime

CLI = [sys.executable, "-m", "gateway.cli"]
READY_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Embedded stores in ``data_dir``, the default log level and format (what an operator gets)."""
    dropped = {"LOG_FORMAT", "LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL") and k not in dropped}
    env.update(COMMERCE_DATA_DIR=str(data_dir), COMMERCE_ENV="development", SEED_DEMO_DATA="0")
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path

    def locked_data_dir(self) -> Path:
        """The directory this gateway holds: ``data_dir``, or its temporary one with ``--ephemeral``."""
        owner = str(self.process.pid)
        candidates = [self.data_dir, *Path(tempfile.gettempdir()).glob("commerce-*")]
        for candidate in candidates:
            with suppress(OSError):
                if (candidate / runtime.LOCK_FILE).read_text().strip() == owner:
                    return candidate
        raise AssertionError(f"no data directory locked by pid {owner}")

    def started_stores(self, at_least: int = 3, timeout: float = 15.0) -> set[int]:
        """``store_pids`` once at least ``at_least`` show up (a loaded machine may list a freshly
        started daemon a moment after the gateway answers)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.store_pids()
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def store_pids(self) -> set[int]:
        """The processes this gateway started: children, and the daemons serving its data directory."""
        pids = {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}
        data_dir = self.locked_data_dir()
        markers = [str(data_dir)]
        published = runtime.read(data_dir)
        if published is not None and published.redis_url:
            markers.append(published.redis_url.removeprefix("unix://"))
        return pids | processes_mentioning(*markers)


def processes_mentioning(*markers: str) -> set[int]:
    """Live (non-zombie) processes whose command line contains one of ``markers``."""
    found = set()
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE or process.pid == os.getpid():
            continue
        argv = process.info["cmdline"] or []
        command = " ".join(argv)
        # Not the test runners themselves (their arguments may name the markers); the stores'
        # own command lines may contain "pytest" (pytest's default temporary directories do).
        runner = "-m pytest" in command or any(Path(arg).name in ("pytest", "py.test") for arg in argv[:2])
        if any(marker in command for marker in markers) and not runner:
            found.add(process.pid)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (an exited daemon waiting for init to reap it is not)."""
    running = set()
    for pid in pids:
        with suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.add(pid)
    return running


@contextmanager
def serving(data_dir: Path, *args: str, **env: str) -> Iterator[Served]:
    """``serve`` on a free port, ready; killed with everything it started if the test did not stop it."""
    with serving_side_by_side((data_dir, args, env)) as (served,):
        yield served


Launch = tuple[Path, Sequence[str], Mapping[str, str]]


@contextmanager
def serving_side_by_side(*launches: Launch) -> Iterator[list[Served]]:
    """Several ``serve`` processes (data directory, arguments, environment each), started at
    once and each ready; at exit each is stopped as ``serving`` stops one."""
    gateways: list[tuple[Served, set[int]]] = []
    ports: set[int] = set()
    try:
        for data_dir, args, env in launches:
            while (port := free_port()) in ports:
                pass
            ports.add(port)
            gateways.append((_launch(port, data_dir, *args, **env), set()))
        for index, (served, _) in enumerate(gateways):
            _wait_ready(served)
            gateways[index] = (served, served.store_pids())
        yield [served for served, _ in gateways]
    finally:
        for served, _ in gateways:
            if served.process.poll() is None:
                served.process.send_signal(signal.SIGTERM)
        for served, started in gateways:
            _stop(served.process, started)


def _launch(port: int, data_dir: Path, *args: str, **env: str) -> Served:
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        env=cli_env(data_dir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return Served(process, f"http://127.0.0.1:{port}", data_dir)


def _wait_ready(served: Served) -> None:
    process = served.process
    deadline = time.monotonic() + READY_SECONDS
    while True:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        with suppress(httpx.HTTPError):
            if httpx.get(f"{served.base_url}/readyz", timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, "gateway did not become ready"
        time.sleep(0.3)


def _stop(process: subprocess.Popen[bytes], started: set[int]) -> None:
    """Wait for a SIGTERMed gateway (kill it after 30 s), then kill what it left of ``started``."""
    if process.poll() is None:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for pid in alive(started):
        with suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
