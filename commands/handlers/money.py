"""Money configuration handlers: the configuration row and its event, in one transaction.

Writers of one configuration item are serialized by the row (upsert), and the
stream append carries no expected version: the newest event is the configuration.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from commands.bus import CommandBus
from commands.errors import InvalidInput
from commands.events import money as ev
from commands.messages.money import (
    DefineDiscountCode,
    DefineShippingMethod,
    MoneyConfigResult,
    SetTaxPolicy,
    SetTaxRate,
)
from commands.money import validation
from commands.store.tables import discount_codes, shipping_methods, tax_policies, tax_rates
from commands.store.unit_of_work import UnitOfWork


def register(bus: CommandBus) -> None:
    bus.register(DefineShippingMethod, define_shipping_method, validate=validation.shipping_method)
    bus.register(SetTaxRate, set_tax_rate, validate=validation.tax_rate)
    bus.register(SetTaxPolicy, set_tax_policy, validate=validation.tax_policy)
    bus.register(DefineDiscountCode, define_discount_code, validate=validation.discount_code)


async def define_shipping_method(command: DefineShippingMethod, uow: UnitOfWork) -> MoneyConfigResult:
    values = {
        "name": command.name.strip(),
        "currency": command.currency,
        "price": command.price,
        "free_above": command.free_above,
        "country_prices": {country: str(price) for country, price in command.country_prices},
        "countries": list(command.countries),
        "active": command.active,
        "updated_at": func.now(),
    }
    await uow.conn.execute(
        pg_insert(shipping_methods)
        .values(code=command.code, **values)
        .on_conflict_do_update(index_elements=["code"], set_=values)
    )
    event = ev.ShippingMethodDefined(
        code=command.code,
        name=command.name.strip(),
        currency=command.currency,
        price=command.price,
        free_above=command.free_above,
        country_prices=tuple(ev.CountryPrice(c, p) for c, p in command.country_prices),
        countries=command.countries,
        active=command.active,
    )
    await uow.append(event.stream_type, ev.shipping_method_stream(command.code), [event])
    return MoneyConfigResult(uow.last_position)


async def set_tax_rate(command: SetTaxRate, uow: UnitOfWork) -> MoneyConfigResult:
    region = command.region or ""
    t = tax_rates.c
    if command.rate is None:
        await uow.conn.execute(
            tax_rates.delete().where(
                t.country_code == command.country_code, t.region == region, t.category == command.category
            )
        )
    else:
        await uow.conn.execute(
            pg_insert(tax_rates)
            .values(
                country_code=command.country_code,
                region=region,
                category=command.category,
                rate=command.rate,
                updated_at=func.now(),
            )
            .on_conflict_do_update(
                index_elements=["country_code", "region", "category"],
                set_={"rate": command.rate, "updated_at": func.now()},
            )
        )
    event = ev.TaxRateSet(command.country_code, command.region, command.category, command.rate)
    stream = ev.tax_rate_stream(command.country_code, command.region, command.category)
    await uow.append(event.stream_type, stream, [event])
    return MoneyConfigResult(uow.last_position)


async def set_tax_policy(command: SetTaxPolicy, uow: UnitOfWork) -> MoneyConfigResult:
    values = {
        "prices_include_tax": command.prices_include_tax,
        "rounding": command.rounding,
        "updated_at": func.now(),
    }
    await uow.conn.execute(
        pg_insert(tax_policies)
        .values(currency=command.currency, **values)
        .on_conflict_do_update(index_elements=["currency"], set_=values)
    )
    event = ev.TaxPolicySet(command.currency, command.prices_include_tax, command.rounding)
    await uow.append(event.stream_type, ev.tax_policy_stream(command.currency), [event])
    return MoneyConfigResult(uow.last_position)


async def define_discount_code(command: DefineDiscountCode, uow: UnitOfWork) -> MoneyConfigResult:
    # The command, the event and the table's columns share their names.
    fields = dataclasses.asdict(command)
    values = {name: value for name, value in fields.items() if name != "code"} | {"updated_at": func.now()}
    # The code keeps its count; the row lock keeps checkouts from taking a use meanwhile.
    uses = (
        await uow.conn.execute(
            select(discount_codes.c.uses).where(discount_codes.c.code == command.code).with_for_update()
        )
    ).scalar_one_or_none()
    if uses is not None and command.usage_limit is not None and command.usage_limit < uses:
        raise InvalidInput(f"the code has been used {uses} times already", ["usageLimit"])
    await uow.conn.execute(
        pg_insert(discount_codes)
        .values(code=command.code, uses=0, **values)
        .on_conflict_do_update(index_elements=["code"], set_=values)
    )
    event = ev.DiscountCodeDefined(**fields)
    await uow.append(event.stream_type, ev.discount_code_stream(command.code), [event])
    return MoneyConfigResult(uow.last_position)
