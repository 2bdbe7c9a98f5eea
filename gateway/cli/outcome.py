"""How a one-shot command ends when it ran but refused part of its input."""

from __future__ import annotations


class PartlyRefused(Exception):
    """The command did what it could and refused the rest: ``report`` (what it did, and what it
    refused and why) goes to stdout as for a success, and the exit code is ``EXIT_CODE``, so a
    script sees the refusals without reading the report."""

    EXIT_CODE = 1

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report
