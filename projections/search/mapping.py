"""Index settings and mapping of the product search read model, and the document builder.

One document per product (id = product uuid). Only active variants are
indexed; withdrawn ones disappear from search and from SKU lookups.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from commands.events.catalog import ProductState

# numeric(18, 4) in the catalog tables: four decimals survive the round trip.
PRICE_SCALING = 10_000

_TEXT = {"type": "text", "analyzer": "english"}
_PRICE = {"type": "scaled_float", "scaling_factor": PRICE_SCALING}

INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "refresh_interval": "1s",
}

INDEX_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "product_id": {"type": "keyword"},
        "handle": {"type": "keyword"},
        # Catch-all for "every query word somewhere in the product" matching.
        "search_text": _TEXT,
        "title": {
            **_TEXT,
            "copy_to": "search_text",
            "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
        },
        # Normalized by the projection, not by a keyword normalizer: the embedded
        # engine sorts keyword sub-fields by the raw value (see docs/catalog.md).
        "title_sort": {"type": "keyword"},
        "description": {**_TEXT, "copy_to": "search_text"},
        "brand": {"type": "keyword", "copy_to": "search_text", "fields": {"text": _TEXT}},
        "categories": {"type": "keyword", "copy_to": "search_text", "fields": {"text": _TEXT}},
        "currency": {"type": "keyword"},
        "price_min": _PRICE,
        "price_max": _PRICE,
        "in_stock": {"type": "boolean"},
        "skus": {"type": "keyword"},
        "variants": {
            "type": "nested",
            "properties": {
                "sku": {"type": "keyword"},
                "title": _TEXT,
                "price": _PRICE,
                # Exact decimal string; the scaled_float above is for range and sort.
                "amount": {"type": "keyword", "index": False},
                "in_stock": {"type": "boolean"},
                # Version of the SKU's inventory stream (bucket 0's) folded in (guard for stock
                # updates; it is written with the document, so it may trail changes that flipped
                # nothing).
                "stock_version": {"type": "integer"},
                # Per stock bucket, {"<bucket>": [stream version, available]} as last written, for a
                # SKU with buckets besides 0 (projections/search/stock.py): kept for the projector,
                # never searched.
                "stock_buckets": {"type": "object", "enabled": False},
            },
        },
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
        "stream_version": {"type": "integer"},
    },
}


def sort_key(title: str) -> str:
    """Case- and accent-insensitive sort key (what a lowercase+asciifolding normalizer does)."""
    decomposed = unicodedata.normalize("NFKD", title)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def product_document(state: ProductState, stream_version: int) -> dict[str, Any]:
    variants = [
        {
            "sku": v.sku,
            "title": v.title,
            "price": float(v.price),
            "amount": str(v.price),
            # Untracked SKUs count as in stock until the inventory read model says otherwise.
            "in_stock": True,
            "stock_version": 0,
        }
        for v in state.active_variants
    ]
    prices = [v.price for v in state.active_variants]
    return {
        "product_id": state.product_id,
        "handle": state.handle,
        "title": state.title,
        "title_sort": sort_key(state.title),
        "description": state.description,
        "brand": state.brand,
        "categories": list(state.categories),
        "currency": state.currency,
        "price_min": float(min(prices)) if prices else None,
        "price_max": float(max(prices)) if prices else None,
        "in_stock": any(v["in_stock"] for v in variants),
        "skus": [v.sku for v in state.active_variants],
        "variants": variants,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "stream_version": stream_version,
    }
