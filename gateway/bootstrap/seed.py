"""Demo data for ``make run``: loaded through the same command handlers as real writes.

The catalog is generated from ``random.Random(seed)``, so the same seed gives
the same products (handles, SKUs, prices); re-seeding appends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import text

from commands.messages.catalog import UpsertProduct, VariantSpec
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container

log = logging.getLogger(__name__)

DEFAULT_COUNT = 3000
DEFAULT_SEED = 20261122
CONCURRENCY = 8
SEED_METADATA = MessageMetadata(actor="system:seed", correlation_id="demo-seed")

BRANDS = (
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adventure Works", "Alpine Ski House",
    "Coho Vineyard", "Wingtip", "Proseware", "Lucerne", "Margie's Travel", "Trey Research", "Woodgrove",
    "Blue Yonder", "Fourth Coffee", "Graphic Design Institute", "Humongous", "Wide World",
    "Tasmanian Traders", "Aurora Peak", "Bramble & Birch", "Cobalt Forge", "Driftwood", "Evergreen Co",
    "Foxglove", "Granite Row", "Harbor Lane", "Ironbark", "Juniper", "Kestrel", "Lumen", "Meadowlark",
    "Nimbus", "Oakhollow",
)  # fmt: skip

# category | product nouns | variant axis | base price range
_CATALOG_TABLE = """
Running Shoes | Running Shoe, Trail Runner, Racing Flat | 7, 8, 9, 10, 11 | 60-220
Hiking Boots | Hiking Boot, Trekking Boot, Approach Shoe | 8, 9, 10, 11, 12 | 90-320
Jackets | Rain Jacket, Down Jacket, Softshell, Trailblazer Jacket | S, M, L, XL | 70-480
T-Shirts | Tee, Crew Neck Shirt, Henley | S, M, L, XL, XXL | 12-45
Backpacks | Daypack, Travel Pack, Hydration Pack | 20L, 30L, 45L | 40-260
Tents | Two-Person Tent, Ultralight Tent, Family Tent | Green, Orange, Grey | 150-900
Sleeping Bags | Sleeping Bag, Quilt, Bivy Sack | Regular, Long | 80-550
Kitchen | Chef's Knife, Cast Iron Skillet, Dutch Oven, Pour-Over Kettle | Small, Large | 18-260
Coffee | Espresso Beans, Filter Roast, Cold Brew Blend | 250g, 500g, 1kg | 9-48
Headphones | Wireless Headphones, Earbuds, Studio Monitor Headphones | Black, White, Navy | 25-450
Watches | Field Watch, Dive Watch, GPS Watch | 38mm, 42mm | 90-1400
Lighting | Headlamp, Lantern, Desk Lamp | Warm, Cool | 8-180
Water Bottles | Insulated Bottle, Squeeze Bottle, Filter Bottle | 500ml, 750ml, 1L | 6-55
Socks | Merino Socks, Running Socks, Hiking Socks | S, M, L | 5-28
Bikes | Gravel Bike, Commuter Bike, Mountain Bike | S, M, L, XL | 450-3800
Bike Parts | Bike Light, Saddle, Pedal Set, Chain Lube | Standard | 4-140
Yoga | Yoga Mat, Yoga Block, Yoga Strap | Blue, Purple, Black | 8-120
Climbing | Climbing Harness, Chalk Bag, Belay Device, Climbing Shoe | S, M, L | 15-210
Home Office | Notebook, Fountain Pen, Monitor Stand, Desk Organizer | Black, Oak | 7-240
Sunglasses | Sunglasses, Glacier Glasses, Sport Shades | Black, Tortoise | 20-290
"""


def _catalog_table() -> dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]]:
    table = {}
    for line in _CATALOG_TABLE.strip().splitlines():
        category, nouns, axis, prices = (part.strip() for part in line.split("|"))
        low, high = prices.split("-")
        table[category] = (
            tuple(n.strip() for n in nouns.split(",")),
            tuple(a.strip() for a in axis.split(",")),
            (float(low), float(high)),
        )
    return table


CATALOG = _catalog_table()
SHARED_CATEGORIES = ("Outdoor", "Sale", "New Arrivals", "Gifts", "Bestsellers", "Eco")
ADJECTIVES = (
    "Classic", "Lightweight", "Rugged", "Everyday", "Summit", "Coastal", "Urban", "Pro", "Heritage", "Nomad",
    "Featherlight", "Stormproof", "Canyon", "Glacier", "Meridian", "Solstice", "Tundra", "Vista", "Zephyr",
)  # fmt: skip
FEATURES = (
    "recycled materials", "a lifetime warranty", "a water-repellent finish", "reinforced seams",
    "breathable mesh panels", "a minimalist design", "hand-finished details", "fast-drying fabric",
    "a secure zip pocket", "a low-profile fit", "organic cotton", "an ergonomic grip",
)  # fmt: skip


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def _price(rng: random.Random, low: float, high: float) -> Decimal:
    # Log-uniform: many affordable items, a long tail of expensive ones; mostly .99 endings.
    whole = max(1, round(low * (high / low) ** rng.random()))
    return Decimal(whole) - (Decimal("0.01") if rng.random() < 0.7 else Decimal(0))


def demo_catalog(count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> list[UpsertProduct]:
    """``count`` product upserts, the same for the same ``seed``."""
    rng = random.Random(seed)
    categories = sorted(CATALOG)
    commands: list[UpsertProduct] = []
    for i in range(count):
        category = rng.choice(categories)
        nouns, axis, (low, high) = CATALOG[category]
        brand = rng.choice(BRANDS)
        title = f"{brand} {rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
        handle = f"{_slug(title)}-{i + 1}"
        base = _price(rng, low, high)
        sizes = rng.sample(axis, k=rng.randint(1, min(5, len(axis))))
        variants = tuple(
            VariantSpec(
                sku=f"{_slug(brand)[:4].upper()}-{i + 1:05d}-{k + 1}",
                title=size,
                price=max(Decimal("0.99"), base + Decimal(rng.choice((0, 0, 5, 10, -5)))),
            )
            for k, size in enumerate(sizes)
        )
        extra = rng.sample(SHARED_CATEGORIES, k=rng.choice((0, 1, 1, 2)))
        first, second = rng.choice(FEATURES), rng.choice(FEATURES)
        if second == first:  # the next one instead; no extra draw, so the rest of the catalog stays
            second = FEATURES[(FEATURES.index(first) + 1) % len(FEATURES)]
        description = f"The {title} is made with {first} and {second}. Part of our {category.lower()} range."
        commands.append(
            UpsertProduct(
                handle=handle,
                title=title,
                variants=variants,
                description=description,
                brand=brand,
                categories=(category, *extra),
                currency_code="USD",
            )
        )
    return commands


async def seed_catalog(
    container: Container, commands: Sequence[UpsertProduct], concurrency: int = CONCURRENCY
) -> int:
    """Dispatch ``commands`` through the bus, ``concurrency`` at a time; returns events appended.

    Batching several upserts per transaction was measured to gain nothing here:
    the cost is CPU (handler and PostgreSQL), not commit flushes.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(command: UpsertProduct) -> bool:
        async with gate:
            result = await container.bus.dispatch(command, SEED_METADATA)
            return result.position is not None

    return sum(await asyncio.gather(*(one(c) for c in commands)))


async def catalog_handles(container: Container) -> set[str]:
    async with container.engine.connect() as conn:
        result = await conn.execute(text("SELECT handle FROM catalog_products"))
        return set(result.scalars())


async def seed_if_empty(container: Container, count: int = DEFAULT_COUNT, seed: int = DEFAULT_SEED) -> bool:
    """Seed the demo catalog on first start, and finish one a first start left partial (stopped
    while loading). A catalog holding any product of its own is left alone. False: nothing to seed.
    """
    present = await catalog_handles(container)
    demo = demo_catalog(count, seed)
    if not present <= {command.handle for command in demo}:
        return False
    missing = [command for command in demo if command.handle not in present]
    if not missing:
        return False
    started = time.perf_counter()
    appended = await seed_catalog(container, missing)
    log.info(
        "demo catalog seeded"
        if not present
        else "demo catalog completed (a first start was stopped while loading it)",
        extra={
            "products": appended,
            "already_there": len(present),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    return True
