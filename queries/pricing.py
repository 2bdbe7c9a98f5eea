"""Reads of the ``pricing`` read model (``pricing_view``): what quotes a cart. Never writes.

Rows come back as the events stored them (amounts as decimal strings); the
gateway turns them into ``commands.domain.money`` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROJECTION = "pricing"
TABLE = "pricing_view"


@dataclass(frozen=True)
class PricingView:
    shipping_methods: tuple[dict[str, Any], ...] = ()
    # Rates of the destination country (rate None: removed).
    tax_rates: tuple[dict[str, Any], ...] = ()
    tax_policy: dict[str, Any] | None = None
    discount_code: dict[str, Any] | None = None
    tax_categories: dict[str, str] = field(default_factory=dict)


_QUOTE = text(
    f"SELECT kind, key, data FROM {TABLE} WHERE kind = 'shipping_method' "
    f"OR (kind = 'tax_rate' AND key LIKE :rates) OR (kind = 'tax_policy' AND key = :currency) "
    f"OR (kind = 'discount_code' AND key = :code) OR (kind = 'variant_tax' AND key = ANY(:skus))"
)


class PricingQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_cart(
        self, currency: str, country_code: str | None, skus: Sequence[str], discount_code: str | None
    ) -> PricingView:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    _QUOTE,
                    {
                        # No destination: no rates (the pattern matches no stream id).
                        "rates": f"tax-rate-{country_code}-%" if country_code else "",
                        "currency": currency,
                        "code": discount_code or "",
                        "skus": list(skus),
                    },
                )
            ).all()
        by_kind: dict[str, list[Any]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        return PricingView(
            shipping_methods=tuple(row.data for row in by_kind.get("shipping_method", [])),
            tax_rates=tuple(row.data for row in by_kind.get("tax_rate", []) if row.data["rate"] is not None),
            tax_policy=next((row.data for row in by_kind.get("tax_policy", [])), None),
            discount_code=next((row.data for row in by_kind.get("discount_code", [])), None),
            tax_categories={row.key: row.data["category"] for row in by_kind.get("variant_tax", [])},
        )
