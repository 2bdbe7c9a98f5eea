"""The plain-field executor answers exactly what graphql-core's standard execution answers,
errors included, and skips the per-field machinery only where no resolver runs."""

from __future__ import annotations

import enum
import gc
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLResolveInfo, execute, parse

from gateway.edge import selection_cache
from gateway.edge.plain_fields import PlainFieldExecutor
from gateway.schema.scalars import SCALAR_MAP


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Price:
    amount: Decimal
    currency: str


@strawberry.type
class Variant(Named):
    sku: str
    colour: Colour
    price: Price
    stock: int | None
    tags: list[str]


CALLS: list[str] = []


@strawberry.type
class Product(Named):
    title: str
    variants: list[Variant]
    cheapest: Price | None

    @strawberry.field
    def resolved(self) -> str:
        CALLS.append(self.title)
        return self.title.upper()

    @strawberry.field
    async def later(self) -> list[Price]:
        return [v.price for v in self.variants]


PRODUCTS: list[Product] = []


@strawberry.type
class Query:
    @strawberry.field
    def products(self) -> list[Product]:
        return PRODUCTS


class CountingPlain(PlainFieldExecutor):
    infos = 0
    built = 0

    def build_resolve_info(self, *args: Any) -> GraphQLResolveInfo[Any]:
        CountingPlain.infos += 1
        return super().build_resolve_info(*args)

    def _make_completer(self, *args: Any) -> Any:
        CountingPlain.built += 1
        return super()._make_completer(*args)


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    config = strawberry.schema.config.StrawberryConfig(scalar_map=SCALAR_MAP)
    plain = strawberry.Schema(query=Query, config=config, execution_context_class=CountingPlain)
    return plain, strawberry.Schema(query=Query, config=config)


def _variant(code: str, **overrides: Any) -> Variant:
    values: dict[str, Any] = {
        "name": code,
        "sku": code,
        "colour": Colour.RED,
        "price": Price(amount=Decimal("9.50"), currency="EUR"),
        "stock": 3,
        "tags": ["a", "b"],
    }
    values.update(overrides)
    return Variant(**values)


def _catalog(*variants: Variant) -> list[Product]:
    return [
        Product(name="p1", title="Tee", variants=list(variants), cheapest=None),
        Product(name="p2", title="Cap", variants=[_variant("C-1", colour=Colour.BLUE)], cheapest=None),
    ]


QUERY = """
query($withStock: Boolean!) {
  products {
    __typename
    title
    label: title
    ... on Named { name }
    variants {
      sku colour tags __typename
      price { amount currency }
      stock @include(if: $withStock)
      ...Pricey
    }
    cheapest { amount }
  }
}
fragment Pricey on Variant { price { currency } }
"""


async def _both(query: str, variables: dict[str, Any] | None = None) -> tuple[Any, Any]:
    plain, standard = _schemas()
    CountingPlain.infos = 0
    got = await plain.execute(query, variable_values=variables)
    want = await standard.execute(query, variable_values=variables)
    return got, want


def _errors(result: Any) -> list[tuple[str, list[Any] | None]]:
    return [(e.message, e.path) for e in result.errors or []]


async def test_plain_selections_answer_what_the_standard_execution_answers_without_resolve_infos() -> None:
    PRODUCTS[:] = _catalog(_variant("T-1"), _variant("T-2", stock=None, tags=[]))
    for with_stock in (True, False):
        got, want = await _both(QUERY, {"withStock": with_stock})
        assert got.errors is None and want.errors is None
        assert got.data == want.data
        assert got.data["products"][0]["variants"][0]["price"] == {"amount": "9.50", "currency": "EUR"}
        assert ("stock" in got.data["products"][0]["variants"][0]) is with_stock
    # Only the root resolver and the fields under the @include directive (one per product)
    # take the standard path; every other field is completed without a resolve info.
    assert CountingPlain.infos <= 3


async def test_a_null_for_a_non_null_field_is_the_same_error_at_the_same_path() -> None:
    PRODUCTS[:] = _catalog(_variant("T-1"), _variant("T-2", sku=None))
    got, want = await _both(QUERY, {"withStock": False})
    assert _errors(got) == _errors(want) != []
    assert _errors(got)[0][1] == ["products", 0, "variants", 1, "sku"]
    assert got.data == want.data


async def test_a_value_the_scalar_rejects_is_the_same_error() -> None:
    PRODUCTS[:] = _catalog(_variant("T-1", stock="many"))
    got, want = await _both(QUERY, {"withStock": True})
    assert _errors(got) == _errors(want) != []
    assert got.data == want.data


async def test_a_resolver_inside_a_plain_parent_runs_once_and_async_fields_complete() -> None:
    PRODUCTS[:] = _catalog(_variant("T-1"))
    CALLS.clear()
    plain, standard = _schemas()
    query = "{ products { title resolved later { amount } variants { sku } } }"
    got = await plain.execute(query)
    assert CALLS == ["Tee", "Cap"]
    want = await standard.execute(query)
    assert got.errors is None and got.data is not None and got.data == want.data
    assert got.data["products"][0]["resolved"] == "TEE"
    assert got.data["products"][1]["later"] == [{"amount": "9.50"}]


async def _run_document(
    plain: strawberry.Schema, document: Any, variables: dict[str, Any] | None = None
) -> Any:
    result = execute(plain._schema, document, variable_values=variables, executor_class=CountingPlain)
    return await result if hasattr(result, "__await__") else result


async def test_a_cached_document_without_directives_reuses_its_completers_with_fresh_values() -> None:
    document = parse(
        "{ products { title variants { ...V } } } fragment V on Variant { sku price { amount } }"
    )
    plain, _ = _schemas()
    PRODUCTS[:] = _catalog(_variant("T-1"))
    CountingPlain.built = 0
    first = await _run_document(plain, document)
    assert CountingPlain.built > 0
    PRODUCTS[:] = _catalog(_variant("T-9", price=Price(amount=Decimal("1.25"), currency="EUR")))
    CountingPlain.built = 0
    second = await _run_document(plain, document)
    assert CountingPlain.built == 0
    assert first.data["products"][0]["variants"] == [{"sku": "T-1", "price": {"amount": "9.50"}}]
    assert second.data["products"][0]["variants"] == [{"sku": "T-9", "price": {"amount": "1.25"}}]


async def test_a_document_with_directives_collects_its_selection_again_on_every_request() -> None:
    document = parse("query($s: Boolean!) { products { variants { sku stock @include(if: $s) } } }")
    plain, _ = _schemas()
    PRODUCTS[:] = _catalog(_variant("T-1"))
    shown = await _run_document(plain, document, {"s": True})
    CountingPlain.built = 0
    hidden = await _run_document(plain, document, {"s": False})
    assert CountingPlain.built > 0
    assert shown.data["products"][0]["variants"] == [{"sku": "T-1", "stock": 3}]
    assert hidden.data["products"][0]["variants"] == [{"sku": "T-1"}]


async def test_a_cached_document_with_a_conditional_fragment_follows_its_variables() -> None:
    document = parse(
        "query($s: Boolean!) { products { variants { sku ... on Variant @include(if: $s) { stock } "
        "...Tags @skip(if: $s) } } } fragment Tags on Variant { tags }"
    )
    plain, _ = _schemas()
    PRODUCTS[:] = _catalog(_variant("T-1"))
    for shown in (True, False, True):
        result = await _run_document(plain, document, {"s": shown})
        variant = result.data["products"][0]["variants"][0]
        assert variant == ({"sku": "T-1", "stock": 3} if shown else {"sku": "T-1", "tags": ["a", "b"]})


async def test_odd_values_inside_plain_selections_answer_as_the_standard_execution() -> None:
    query = "{ products { title cheapest { amount currency } variants { colour stock } } }"
    bad_enum = _catalog(_variant("T-1", colour="green"))
    null_in_nullable_object = _catalog(_variant("T-1"))
    null_in_nullable_object[1].cheapest = Price(amount=None, currency="EUR")  # type: ignore[arg-type]
    expected = {
        "bad enum": ["products", 0, "variants", 0, "colour"],
        "null leaf": ["products", 1, "cheapest", "amount"],
    }
    for case, products in (("bad enum", bad_enum), ("null leaf", null_in_nullable_object)):
        PRODUCTS[:] = products
        got, want = await _both(query)
        assert _errors(got) == _errors(want)
        assert [path for _, path in _errors(got)] == [expected[case]]
        assert got.data == want.data
    assert got.data is not None and got.data["products"][1]["cheapest"] is None


async def test_a_document_parsed_for_one_request_leaves_nothing_behind() -> None:
    plain, _ = _schemas()
    PRODUCTS[:] = _catalog(_variant("T-1"))
    gc.collect()
    before = len(selection_cache._by_operation)
    for n in range(20):
        result = await _run_document(
            plain, parse(f"{{ products {{ title variants {{ sku }} label: title }} n{n}: __typename }}")
        )
        assert result.errors is None
    gc.collect()
    assert len(selection_cache._by_operation) == before
