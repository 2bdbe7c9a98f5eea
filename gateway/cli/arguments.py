"""Argument types for the CLI's options that nothing after argparse checks: a value out of range
is refused with the option named (exit 2), before anything connects."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def subject(text: str) -> str:
    """A token's subject: the gateway refuses a token whose ``sub`` is empty, and " cust-1" would
    be another customer than "cust-1"."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if text != text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} starts or ends with spaces")
    return text
