"""``commerce-gateway clients ...`` and ``commerce-gateway persisted register ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.bootstrap import event_loop
from gateway.bootstrap.settings import ConfigurationError, Settings
from gateway.edge.tokens import ROLES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from gateway.edge.clients import ApiClients, ClientListing
    from gateway.edge.persisted import ManifestEntry

COMMANDS = frozenset({"clients", "persisted"})


def add_commands(sub: Any) -> None:
    """Add the subcommands to ``commerce-gateway``'s subparsers."""
    clients = sub.add_parser("clients", help="API clients (partner apps)")
    ops = clients.add_subparsers(dest="clients_command", required=True)
    create = ops.add_parser("create", help="create a client and print its API key (shown only once)")
    create.add_argument("name")
    create.add_argument("--persisted-only", action="store_true", help="may run only its registered documents")
    create.add_argument("--budget", type=int, help="cost budget (bucket size); default from settings")
    create.add_argument("--restore-rate", type=float, help="budget points restored per second")
    create.add_argument(
        "--storefront",
        action="store_true",
        help="a storefront server (SSR, BFF): budgets key on the buyer named in X-Buyer-IP",
    )
    create.add_argument("--roles", nargs="*", default=[], choices=sorted(ROLES), help="roles the key carries")
    revoke = ops.add_parser("revoke", help="revoke a client's key")
    revoke.add_argument("name")
    ops.add_parser("list", help="list clients (never their keys)")
    persisted = sub.add_parser("persisted", help="trusted (persisted) documents")
    persisted_ops = persisted.add_subparsers(dest="persisted_command", required=True)
    register = persisted_ops.add_parser(
        "register", help="register an Apollo or Relay persisted-query manifest for a client"
    )
    register.add_argument("manifest", type=Path)
    register.add_argument("--client", required=True)


def run(args: argparse.Namespace, settings: Settings) -> str:
    return event_loop.run(execute(args, settings))


async def execute(args: argparse.Namespace, settings: Settings) -> str:
    """Run one subcommand; returns what to print on stdout."""
    from gateway.cli.stores import postgres_engine
    from gateway.edge.clients import ApiClients, ClientError

    async with postgres_engine(settings) as engine:
        clients = ApiClients(engine, cache_seconds=0)
        try:
            if args.command == "persisted":
                return await _register(engine, clients, args.client, args.manifest)
            if args.clients_command == "create":
                client, key = await clients.create(
                    args.name,
                    roles=frozenset(args.roles),
                    persisted_only=args.persisted_only,
                    budget=args.budget,
                    restore_rate=args.restore_rate,
                    storefront=getattr(args, "storefront", False),
                )
                print(
                    f"client {client.name} created; store this key now, it is not shown again:",
                    file=sys.stderr,
                )
                return key
            if args.clients_command == "revoke":
                await clients.revoke(args.name)
                return f"client {args.name} revoked"
            return _listing(await clients.listing())
        except ClientError as exc:
            raise ConfigurationError(str(exc)) from None


def _listing(rows: list[ClientListing]) -> str:
    lines = ["name\tkey\troles\tpersisted_only\tbudget\trestore_rate\tcreated_at\trevoked_at"]
    for row in rows:
        client = row.client
        lines.append(
            "\t".join(
                [
                    client.name,
                    row.key_prefix + "...",
                    ",".join(sorted(client.roles)) or "-",
                    "yes" if client.persisted_only else "no",
                    str(client.budget or "default"),
                    str(client.restore_rate or "default"),
                    row.created_at.isoformat(timespec="seconds"),
                    row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-",
                ]
            )
        )
    return "\n".join(lines)


async def _register(engine: AsyncEngine, clients: ApiClients, client_name: str, manifest: Path) -> str:
    from gateway.edge.persisted import TrustedDocuments, parse_manifest

    client = await clients.active(client_name)
    if client is None:
        raise ConfigurationError(f"no active client named {client_name!r}")
    try:
        raw = json.loads(await asyncio.to_thread(manifest.read_text, encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {manifest}: {exc}") from None
    entries = check_documents(parse_manifest(raw))
    added, present = await TrustedDocuments(engine).register(client, entries)
    return f"{added} documents registered for {client.name} ({present} already registered)"


def check_documents(entries: list[ManifestEntry]) -> list[ManifestEntry]:
    """Each document must parse and validate against the served schema; fills in name and type."""
    from dataclasses import replace

    from graphql import GraphQLError, OperationDefinitionNode, parse, validate

    from gateway.http.app import build_schema

    schema = build_schema()._schema
    checked = []
    for entry in entries:
        try:
            document = parse(entry.body)
        except GraphQLError as exc:
            raise ConfigurationError(f"document {entry.id}: {exc.message}") from None
        if errors := validate(schema, document):
            raise ConfigurationError(f"document {entry.id}: {errors[0].message}")
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        checked.append(
            replace(
                entry,
                name=entry.name or (operation.name.value if operation.name else None),
                type=entry.type or operation.operation.value,
            )
        )
    return checked
