"""The test suite stops what it started on SIGTERM as on Ctrl-C: a run stopped by a CI timeout
or ``kill`` leaves no embedded store running."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

HANGING = """
import asyncio, os
from pathlib import Path

async def test_waits_forever(container) -> None:
    Path(os.environ["STARTED_MARK"]).write_text("started")
    await asyncio.sleep(600)
"""


ROOT = Path(__file__).resolve().parents[2]


def _started_under(directory: Path) -> list[int]:
    """The processes whose command line names ``directory`` (the stores keep their data and
    sockets there; they detach from the run that started them, so they are not its children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in command:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_a_run_stopped_by_sigterm_stops_its_embedded_stores(tmp_path: Path) -> None:
    (tmp_path / "test_hanging.py").write_text(HANGING)
    mark = tmp_path / "started"
    # The inner run's temporary files, its stores' data and sockets: a short path (a socket's
    # path has a length limit that pytest's own temporary directories exceed).
    scratch = Path(tempfile.mkdtemp(prefix="sigterm-"))
    # The project's settings (asyncio mode) and fixtures, for a test file outside its tree.
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.conftest",
        "-c",
        str(ROOT / "pyproject.toml"),
        "--rootdir",
        str(ROOT),
        str(tmp_path / "test_hanging.py"),
        cwd=ROOT,
        env={**os.environ, "STARTED_MARK": str(mark), "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for _ in range(1200):
            if mark.exists() or run.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if not mark.exists():
            if run.returncode is None:
                run.kill()
            raise AssertionError((await run.communicate())[0][-3000:].decode())
        started = [pid for pid in _started_under(scratch) if pid != run.pid]
        assert len(started) >= 2, "its PostgreSQL and Redis run"
        run.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode != 0
        assert b"stopped by SIGTERM" in output, output[-2000:]
        assert not [pid for pid in started if _alive(pid)], "every process it started has stopped"
    finally:
        if run.returncode is None:
            run.send_signal(signal.SIGINT)
            await run.wait()
        shutil.rmtree(scratch, ignore_errors=True)
