"""The runtime file: how other processes reach the stores of the gateway that holds a data directory.

The process holding ``gateway.lock`` writes ``gateway.runtime.json`` beside it (the URLs of
the embedded servers it started, and its own HTTP address once it listens) and removes it at
stop. A CLI command that finds the directory locked reads it instead of starting the stores.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

LOCK_FILE = "gateway.lock"
RUNTIME_FILE = "gateway.runtime.json"


@dataclass(frozen=True)
class GatewayRuntime:
    pid: int
    database_url: str | None = None
    redis_url: str | None = None
    elasticsearch_url: str | None = None
    # The gateway's HTTP address (admin endpoints); None for processes that do not serve.
    gateway_url: str | None = None

    def with_changes(self, **changes: str | None) -> GatewayRuntime:
        return replace(self, **changes)  # type: ignore[arg-type]


def write(data_dir: Path, runtime: GatewayRuntime) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    target = data_dir / RUNTIME_FILE
    partial = target.with_name(f".{RUNTIME_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(runtime)), encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, target)


def remove(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / RUNTIME_FILE).unlink()


def read(data_dir: Path) -> GatewayRuntime | None:
    try:
        raw = json.loads((data_dir / RUNTIME_FILE).read_text(encoding="utf-8"))
        return GatewayRuntime(**raw)
    except (OSError, ValueError, TypeError):
        return None


def is_locked(data_dir: Path) -> bool:
    """Whether a process (another one, or another handle in this one) holds the lock right now."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False
