"""Progress display for long benchmark phases: one self-rewriting line on a terminal,
a line every few seconds otherwise (CI logs, ``make bench | tee``)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_LOG_EVERY_SECONDS = 5.0


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._bench = ""
        self._phase = ""
        self._phase_started = time.perf_counter()
        self._last_log = 0.0
        self._line_open = False

    def bench(self, name: str) -> None:
        self._end_line()
        self._bench = name
        self._write(f"== {name}\n")

    def phase(self, text: str) -> None:
        """A new step; its elapsed time restarts."""
        self._end_line()
        self._phase = text
        self._phase_started = time.perf_counter()
        self._last_log = 0.0
        self._write(f"   {text}\n")

    def update(self, done: int, total: int | None = None, detail: str = "") -> None:
        now = time.perf_counter()
        elapsed = now - self._phase_started
        rate = f"{done / elapsed:,.1f}/s" if elapsed > 0.5 else ""
        if total:
            width = 24
            filled = min(width, int(width * done / total))
            bar = "#" * filled + "." * (width - filled)
            count = f"[{bar}] {done}/{total}"
        else:
            count = f"{done}"
        line = f"   {self._phase}: {count}  {rate}  {elapsed:5.1f}s  {detail}".rstrip()
        if self._tty:
            self._write("\r\x1b[2K" + line[:200])
            self._line_open = True
        elif now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            self._write(line + "\n")

    def note(self, text: str) -> None:
        self._end_line()
        self._write(f"   {text}\n")

    def done(self, text: str = "") -> None:
        self._end_line()
        elapsed = time.perf_counter() - self._phase_started
        self._write(f"   {self._phase}: done in {elapsed:.1f}s{'  ' + text if text else ''}\n")

    def _end_line(self) -> None:
        if self._line_open:
            self._write("\n")
            self._line_open = False

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
