"""``commerce-gateway catalog import FILE.jsonl``: a bulk catalog load (format: docs/catalog.md)."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from gateway.bootstrap.settings import ConfigurationError, Settings
from gateway.cli.outcome import PartlyRefused

COMMANDS = frozenset({"catalog"})
ACTOR = "system:catalog-import"
# Bad lines listed in the output; the count covers the rest.
SHOWN_ERRORS = 50


def add_commands(sub: Any) -> None:
    """Add the subcommands to ``commerce-gateway``'s subparsers."""
    catalog = sub.add_parser("catalog", help="catalog operations")
    ops = catalog.add_subparsers(dest="catalog_command", required=True)
    load = ops.add_parser(
        "import",
        help="load products, variants and stock from a JSON Lines file (one product per line); "
        "running it again changes nothing, so an interrupted import resumes",
    )
    load.add_argument("file", type=Path)
    load.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="transactions (batches of products) in flight at once; default 4",
    )


async def execute(args: argparse.Namespace, settings: Settings) -> str:
    """Run one subcommand; returns what to print on stdout (raises ``PartlyRefused`` with it when
    some lines were refused)."""
    from commands.store.unit_of_work import MessageMetadata
    from gateway.catalog_import import CONCURRENCY, CatalogImporter, parse_lines
    from gateway.cli.stores import wired_container

    concurrency = CONCURRENCY if args.concurrency is None else args.concurrency
    if concurrency < 1:
        raise ConfigurationError("--concurrency must be at least 1")
    try:
        content = await asyncio.to_thread(args.file.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {args.file}: {exc}") from None
    metadata = MessageMetadata(actor=ACTOR, correlation_id=f"catalog-import:{uuid.uuid4()}")
    async with wired_container(settings) as container:
        importer = CatalogImporter(container.bus, container.engine, metadata, concurrency=concurrency)
        started = time.perf_counter()
        report = await importer.run(parse_lines(content.splitlines()))
        elapsed = time.perf_counter() - started
    rate = report.imported / elapsed if elapsed > 0 else 0.0
    lines = [
        f"{report.imported} products imported in {elapsed:.1f} s ({rate:.0f}/s): "
        f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged; "
        f"stock set for {report.stock_set} SKUs; {report.failed} lines refused",
        *(error.describe() for error in report.errors[:SHOWN_ERRORS]),
    ]
    if len(report.errors) > SHOWN_ERRORS:
        lines.append(f"... and {len(report.errors) - SHOWN_ERRORS} more errors")
    if report.failed:
        # The good lines are in; the exit code says that some were not.
        raise PartlyRefused("\n".join(lines))
    return "\n".join(lines)
