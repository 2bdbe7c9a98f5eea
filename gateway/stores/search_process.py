"""The embedded search engine (osmem) as a child process whose chatter goes to a log file.

``OsmemServer.start`` lets the server write to our stderr (its exit notice ends every CLI
command's output); this starts the same binary the same way with stderr in ``log_path``,
and hands back the library's ``OsmemServer`` handle.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

from osmem_server import OsmemError, OsmemServer, resolve_binary

STARTUP_TIMEOUT_SECONDS = 30.0


def start_search(log_path: Path | None) -> OsmemServer:
    # --parent-pid: the server exits by itself when this process dies without stopping it.
    args = [resolve_binary(), "--parent-pid", str(os.getpid()), "--no-ja"]
    log_file: IO[bytes] | int = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
    finally:
        if not isinstance(log_file, int):
            log_file.close()
    ready = _ready_line(process)
    if ready is None:
        process.kill()
        process.wait()
        where = f"; see {log_path}" if log_path is not None else ""
        raise OsmemError(f"the embedded search engine did not start{where}")
    return OsmemServer(
        process,
        ready["url"],
        ready.get("pid", process.pid),
        ready.get("version", ""),
        ready.get("japanese", False),
        list(ready.get("indices", [])),
    )


def _ready_line(process: subprocess.Popen[str]) -> dict[str, Any] | None:
    """The JSON line the server prints once it listens, or None when it exits or times out."""
    ready: dict[str, Any] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "url" in message:
                ready.update(message)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_SECONDS)
    return ready or None
