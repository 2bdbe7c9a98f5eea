"""Limits and budgets of the GraphQL edge, from the environment (``Settings.edge``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import cast

from gateway.environment import EnvReader, InvalidVariable

# Environment variable per field; every one is optional.
ENV_VARS: dict[str, str] = {
    "max_body_bytes": "GRAPHQL_MAX_BODY_BYTES",
    "max_depth": "GRAPHQL_MAX_DEPTH",
    "max_aliases": "GRAPHQL_MAX_ALIASES",
    "max_root_fields": "GRAPHQL_MAX_ROOT_FIELDS",
    "max_tokens": "GRAPHQL_MAX_TOKENS",
    "max_batch_size": "GRAPHQL_MAX_BATCH_SIZE",
    "max_cost": "GRAPHQL_MAX_COST",
    "default_list_size": "GRAPHQL_DEFAULT_LIST_SIZE",
    "mutation_cost": "GRAPHQL_MUTATION_COST",
    "budget_capacity": "GRAPHQL_BUDGET_CAPACITY",
    "budget_restore_rate": "GRAPHQL_BUDGET_RESTORE_RATE",
    "client_budget_capacity": "GRAPHQL_CLIENT_BUDGET_CAPACITY",
    "client_budget_restore_rate": "GRAPHQL_CLIENT_BUDGET_RESTORE_RATE",
    "support_budget_capacity": "GRAPHQL_SUPPORT_BUDGET_CAPACITY",
    "support_budget_restore_rate": "GRAPHQL_SUPPORT_BUDGET_RESTORE_RATE",
    "admin_budget_capacity": "GRAPHQL_ADMIN_BUDGET_CAPACITY",
    "admin_budget_restore_rate": "GRAPHQL_ADMIN_BUDGET_RESTORE_RATE",
    "rejected_cost": "GRAPHQL_REJECTED_COST",
    "forwarded_allow_ips": "FORWARDED_ALLOW_IPS",
    "apq_ttl_seconds": "GRAPHQL_APQ_TTL_SECONDS",
    "document_cache_size": "GRAPHQL_DOCUMENT_CACHE_SIZE",
    "search_cache_size": "SEARCH_CACHE_SIZE",
    "api_key_cache_seconds": "API_KEY_CACHE_SECONDS",
}


@dataclass(frozen=True)
class EdgeSettings:
    # Request body (or GET query string) in bytes.
    max_body_bytes: int = 100_000
    # Nesting of fields; the standard introspection query (graphql-core) needs 15.
    max_depth: int = 15
    max_aliases: int = 15
    max_root_fields: int = 10
    # Lexical tokens of the document (comments excluded; the body limit bounds those).
    max_tokens: int = 2_000
    # Operations per batched (JSON array) request; 0 disables batching.
    max_batch_size: int = 0
    # Static cost: objects a query may return; list size from `first`, else the size declared
    # for the field (gateway/schema/list_sizes.py), else this default.
    max_cost: int = 1_000
    default_list_size: int = 10
    mutation_cost: int = 10
    # Leaky buckets. Shoppers (anonymous per address or buyer, customers per subject): a search
    # page with variants and facets costs about 250-300, so a person typing ten searches in
    # three seconds stays well inside; one address sustains about one such search a second.
    budget_capacity: int = 5_000
    budget_restore_rate: float = 250.0
    # API clients without a budget of their own (partners; storefront servers' own calls).
    client_budget_capacity: int = 1_000
    client_budget_restore_rate: float = 50.0
    # Staff, per subject: support reads customers' carts, orders and timelines all day; an
    # admin edits the catalog (bulk loads go through catalogImport or the CLI).
    support_budget_capacity: int = 20_000
    support_budget_restore_rate: float = 2_000.0
    admin_budget_capacity: int = 100_000
    admin_budget_restore_rate: float = 10_000.0
    # Charged for a document refused before execution (parse, validation, limits, cost).
    rejected_cost: int = 5
    # Peers whose X-Forwarded-For is believed (addresses or networks; "*" for any), for the
    # address budgets and for uvicorn under `serve`.
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    apq_ttl_seconds: int = 86_400
    document_cache_size: int = 1_000
    # Product search answers kept per process while the search read model has not changed
    # (gateway/edge/search_cache.py); 0 asks the engine every time.
    search_cache_size: int = 512
    api_key_cache_seconds: float = 10.0

    def with_overrides(self, **changes: object) -> EdgeSettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EdgeSettings:
        """Every field from its variable in ``ENV_VARS``, the default when unset; none may be negative."""
        reader = EnvReader(env)
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = ENV_VARS[spec.name]
            if spec.name == "forwarded_allow_ips":
                raw = reader.text(name, "")
                values[spec.name] = _networks(name, raw) if raw.strip() else spec.default
            elif spec.type in {"float", float}:
                values[spec.name] = reader.real(name, cast(float, spec.default), non_negative=True)
            else:
                values[spec.name] = reader.integer(name, cast(int, spec.default), non_negative=True)
        return cls(**values)  # type: ignore[arg-type]


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks, each checked; "*" trusts every peer."""
    entries = tuple(part.strip() for part in raw.split(",") if part.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise InvalidVariable(f"{name}: {entry!r} is not an IP address or network") from None
    return entries
